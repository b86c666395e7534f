"""Heartbeat (key 12), versions 0-4: keeps a member alive; REBALANCE_IN_PROGRESS tells it to rejoin."""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 12


@handler(API_KEY, 0, 4, group_api=True)
async def serve(ctx, request):
    error = ctx.coordinator.heartbeat(ctx.group_key(request.group_id), request.member_id,
                                      request.group_instance_id if ctx.version >= 3 else None,
                                      request.generation_id)
    return response_class(API_KEY)(throttle_time_ms=0, error_code=error)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code)
