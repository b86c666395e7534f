"""DeleteGroups (key 42), versions 0-2: only groups without members (NON_EMPTY_GROUP otherwise);
their commits are tombstoned in ``__offsets`` and their Pulsar subscriptions removed."""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 42


@handler(API_KEY, 0, 2, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    results = []
    for group_id in request.groups_names:
        code = await ctx.coordinator.delete_group(ctx.group_key(group_id))  # NOT_COORDINATOR if it moved
        results.append(resp.DeletableGroupResult(group_id=group_id, error_code=code))
    return resp(throttle_time_ms=0, results=results)


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, results=[resp.DeletableGroupResult(group_id=g, error_code=code)
                                             for g in request.groups_names])
