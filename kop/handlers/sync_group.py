"""SyncGroup (key 14), versions 0-5.

The leader's assignments are stored in ``__offsets`` (so a coordinator that restarts or takes over
knows them) before anyone gets theirs; followers wait for the leader. v5 checks protocol type and
name (INCONSISTENT_GROUP_PROTOCOL).
"""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 14


@handler(API_KEY, 0, 5, group_api=True)
async def serve(ctx, request):
    result = await ctx.coordinator.sync(
        group_id=ctx.group_key(request.group_id), member_id=request.member_id,
        group_instance_id=request.group_instance_id if ctx.version >= 3 else None,
        generation_id=request.generation_id,
        protocol_type=request.protocol_type if ctx.version >= 5 else None,
        protocol_name=request.protocol_name if ctx.version >= 5 else None,
        assignments={a.member_id: a.assignment for a in request.assignments})
    return response_class(API_KEY)(throttle_time_ms=0, error_code=result.error, assignment=result.assignment,
                                   protocol_type=result.protocol_type, protocol_name=result.protocol_name)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, assignment=b"", protocol_type=None,
                                   protocol_name=None)
