"""AddOffsetsToTxn (key 25), versions 0-4.

The producer's transaction will carry offsets of consumer group ``group_id`` (sent next with
TxnOffsetCommit to the group's coordinator, which holds them until the transaction ends). The
group id is scoped to the client's namespace like every group id (groups/scope.py). Errors as for
AddPartitionsToTxn.
"""

from __future__ import annotations

from ..protocol.errors import KafkaError
from .registry import handler, response_class

API_KEY = 25


@handler(API_KEY, 0, 4)
async def serve(ctx, request):
    try:
        code = await ctx.transactions.add_offsets(ctx.group_key(request.transactional_id), request.producer_id,
                                                  request.producer_epoch, ctx.group_key(request.group_id))
    except KafkaError as exc:
        code = exc.code
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code)
