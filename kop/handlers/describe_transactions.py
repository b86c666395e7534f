"""DescribeTransactions (key 65), version 0.

The state of each transactional id this gateway coordinates (``kafka-transactions.sh describe``
asks the coordinator FindCoordinator names): its producer id and epoch, timeout, start time and the
partitions of its open transaction. An id coordinated elsewhere: NOT_COORDINATOR; one never seen:
TRANSACTIONAL_ID_NOT_FOUND.
"""

from __future__ import annotations

from ..groups import scope
from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 65


def _state(resp, ctx, tid: str):
    key = ctx.group_key(tid)
    empty = dict(transaction_state="", transaction_timeout_ms=0, transaction_start_time_ms=-1,
                 producer_id=-1, producer_epoch=-1, topics=[])
    if not ctx.transactions.owns(key):
        return resp.TransactionState(error_code=ErrorCode.NOT_COORDINATOR, transactional_id=tid, **empty)
    txn = ctx.transactions.describe(key)
    if txn is None:
        return resp.TransactionState(error_code=ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, transactional_id=tid, **empty)
    topics: dict[str, list[int]] = {}
    if txn.state.open:
        for _namespace, topic, partition in sorted(txn.partitions):
            topics.setdefault(topic, []).append(partition)
    return resp.TransactionState(
        error_code=ErrorCode.NONE, transactional_id=scope.split(key)[1], transaction_state=txn.state.value,
        transaction_timeout_ms=txn.timeout_ms, transaction_start_time_ms=txn.started_ms if txn.state.open else -1,
        producer_id=txn.producer_id, producer_epoch=txn.producer_epoch,
        topics=[resp.TransactionState.TopicData(topic=t, partitions=p) for t, p in topics.items()])


@handler(API_KEY, 0, 0)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, transaction_states=[_state(resp, ctx, tid) for tid in request.transactional_ids])


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, transaction_states=[resp.TransactionState(
        error_code=code, transactional_id=tid, transaction_state="", transaction_timeout_ms=0,
        transaction_start_time_ms=-1, producer_id=-1, producer_epoch=-1, topics=[])
        for tid in request.transactional_ids])
