"""ListGroups (key 16), versions 0-5, with the v4 state filter and the v5 type filter (every group
is a "classic" group). A client sees the groups of its own namespace only (groups/scope.py): the
default namespace's without SASL, its tenant's with it."""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 16


@handler(API_KEY, 0, 5)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    states = {s.lower() for s in (request.states_filter or [])} if ctx.version >= 4 else set()
    types = {t.lower() for t in (request.types_filter or [])} if ctx.version >= 5 else set()
    if types and "classic" not in types:
        return resp(throttle_time_ms=0, error_code=0, groups=[])
    if ctx.session is not None and not ctx.session.groups_allowed:
        return resp(throttle_time_ms=0, error_code=0, groups=[])  # as Kafka: only the groups one may see
    error, listed = ctx.coordinator.list_groups(ctx.group_namespace, states)
    groups = [resp.ListedGroup(group_id=g.group_id, protocol_type=g.protocol_type, group_state=g.state,
                               group_type="classic") for g in listed]
    return resp(throttle_time_ms=0, error_code=error, groups=groups)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, groups=[])
