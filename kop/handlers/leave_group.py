"""LeaveGroup (key 13), versions 0-5 (batched ``members`` with group instance ids from v3).

The departing members are removed at once and the rest rebalance, instead of waiting for a session
timeout.
"""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 13


@handler(API_KEY, 0, 5, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    if ctx.version >= 3:
        wanted = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        wanted = [(request.member_id, None)]
    error, results = ctx.coordinator.leave(ctx.group_key(request.group_id), wanted)
    if ctx.version < 3:
        return resp(throttle_time_ms=0, error_code=results[0] if results else error, members=[])
    return resp(throttle_time_ms=0, error_code=error, members=[
        resp.MemberResponse(member_id=m, group_instance_id=i, error_code=e) for (m, i), e in zip(wanted, results)])


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, members=[])
