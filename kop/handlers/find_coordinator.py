"""FindCoordinator (key 10), versions 0-6 (batched ``coordinator_keys`` from v4).

Every consumer group is coordinated by this gateway (key type 0). Transaction coordinators (key type
1) and share groups (2) are not served: COORDINATOR_NOT_AVAILABLE with a message.

Deviation from Kafka: with one gateway there is one coordinator; choosing among several gateways
through Pulsar (exclusive producers on ``__offsets`` partitions) is still to come.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 10


def _answer(ctx, key_type: int) -> tuple[int, str]:
    if key_type != 0:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, "only consumer-group coordinators are served"
    return ErrorCode.NONE, ""


@handler(API_KEY, 0, 6)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    cfg = ctx.config
    node, host, port = cfg.server.node_id, cfg.server.advertised_host, cfg.advertised_port
    key_type = request.key_type if ctx.version >= 1 else 0
    if ctx.version >= 4:
        coordinators = []
        for key in request.coordinator_keys:
            error, message = _answer(ctx, key_type)
            coordinators.append(resp.Coordinator(key=key, node_id=node if not error else -1,
                                                 host=host if not error else "", port=port if not error else -1,
                                                 error_code=error, error_message=message or None))
        return resp(throttle_time_ms=0, coordinators=coordinators)
    error, message = _answer(ctx, key_type)
    return resp(throttle_time_ms=0, error_code=error, error_message=message or None,
                node_id=node if not error else -1, host=host if not error else "", port=port if not error else -1)


def error_response(request, code):
    resp = response_class(API_KEY)
    keys = list(getattr(request, "coordinator_keys", None) or [])
    return resp(throttle_time_ms=0, error_code=code, error_message=None, node_id=-1, host="", port=-1,
                coordinators=[resp.Coordinator(key=k, node_id=-1, host="", port=-1, error_code=code,
                                               error_message=None) for k in keys])
