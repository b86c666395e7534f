"""SyncGroup (key 14), versions 0-5.

The leader's assignments are stored in ``__offsets`` (so a coordinator that restarts or takes over
knows them) before anyone gets theirs; followers wait for the leader. v5 checks protocol type and
name (INCONSISTENT_GROUP_PROTOCOL).
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 14


@handler(API_KEY, 0, 5, group_api=True)
async def serve(ctx, request):
    error, assignment = await ctx.coordinator.sync(
        group_id=ctx.group_key(request.group_id), member_id=request.member_id,
        group_instance_id=request.group_instance_id if ctx.version >= 3 else None,
        generation_id=request.generation_id,
        protocol_type=request.protocol_type if ctx.version >= 5 else None,
        protocol_name=request.protocol_name if ctx.version >= 5 else None,
        assignments={a.member_id: a.assignment for a in request.assignments})
    group = ctx.coordinator.groups.get(ctx.group_key(request.group_id))
    return response_class(API_KEY)(
        throttle_time_ms=0, error_code=error, assignment=assignment,
        protocol_type=group.protocol_type if group and error == ErrorCode.NONE else None,
        protocol_name=group.protocol_name if group and error == ErrorCode.NONE else None)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, assignment=b"", protocol_type=None,
                                   protocol_name=None)
