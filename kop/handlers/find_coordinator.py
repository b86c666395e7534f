"""FindCoordinator (key 10), versions 0-6 (batched ``coordinator_keys`` from v4).

A consumer group (key type 0) is coordinated by the gateway holding its ``__offsets`` partition
(groups/ownership.py): this one, another live gateway of the fleet, or, while a partition changes
hands, nobody yet (COORDINATOR_NOT_AVAILABLE, which clients retry). A transactional id (key type
1) is coordinated by the holder of the ``__offsets`` partition of the same number, which holds the
``__transactions`` partition too (kop/txn/coordinator.py). Share groups (2) are not served:
COORDINATOR_NOT_AVAILABLE with a message.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 10


async def _answer(ctx, key_type: int, key: str) -> tuple[int, str, int, str, int]:
    """(error, message, node id, host, port)."""
    if key_type not in (0, 1):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, "share groups are not served", -1, "", -1
    node = await ctx.ownership.locate(ctx.group_key(key or ""))
    address = node.address_for(ctx.listener.name if ctx.listener else None) if node is not None else None
    if address is None:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, "the group's coordinator is changing", -1, "", -1
    return ErrorCode.NONE, "", node.node_id, *address


@handler(API_KEY, 0, 6, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    key_type = request.key_type if ctx.version >= 1 else 0
    if ctx.version >= 4:
        coordinators = []
        for key in request.coordinator_keys:
            error, message, node, host, port = await _answer(ctx, key_type, key)
            coordinators.append(resp.Coordinator(key=key, node_id=node, host=host, port=port, error_code=error,
                                                 error_message=message or None))
        return resp(throttle_time_ms=0, coordinators=coordinators)
    error, message, node, host, port = await _answer(ctx, key_type, request.key)
    return resp(throttle_time_ms=0, error_code=error, error_message=message or None, node_id=node, host=host,
                port=port)


def error_response(request, code):
    resp = response_class(API_KEY)
    keys = list(getattr(request, "coordinator_keys", None) or [])
    return resp(throttle_time_ms=0, error_code=code, error_message=None, node_id=-1, host="", port=-1,
                coordinators=[resp.Coordinator(key=k, node_id=-1, host="", port=-1, error_code=code,
                                               error_message=None) for k in keys])
