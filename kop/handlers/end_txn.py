"""EndTxn (key 26), versions 0-4.

Commits or aborts the producer's transaction at its coordinator (kop/txn/coordinator.py): Prepare*
stored, a marker written into every partition of the transaction, Complete* stored, then the
answer; a consumer reading after it sees the outcome. A retried EndTxn while the markers are being
written gets CONCURRENT_TRANSACTIONS (clients retry it), and once done, success again.

Deviation from Kafka: v5 (transactions v2, KIP-890) is not served (see AddPartitionsToTxn).
"""

from __future__ import annotations

from ..protocol.errors import KafkaError
from .registry import handler, response_class

API_KEY = 26


@handler(API_KEY, 0, 4)
async def serve(ctx, request):
    try:
        code = await ctx.transactions.end_txn(ctx.group_key(request.transactional_id), request.producer_id,
                                              request.producer_epoch, bool(request.committed))
    except KafkaError as exc:
        code = exc.code
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code)
