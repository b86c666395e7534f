"""AddPartitionsToTxn (key 24), versions 0-4.

Partitions join the producer's transaction at its coordinator (kop/txn/coordinator.py), which
records each one's start bound (its log end offset now) before answering: from then on a
``read_committed`` consumer reads nothing of that partition past the bound until the transaction
ends. v4 is the batched form (several transactional ids, ``verify_only``) Kafka's brokers send
each other; kop answers it too.

Errors as Kafka: NOT_COORDINATOR when another gateway coordinates the id, PRODUCER_FENCED or
INVALID_PRODUCER_ID_MAPPING for a producer that is not the id's current one,
CONCURRENT_TRANSACTIONS while the previous transaction completes, UNKNOWN_TOPIC_OR_PARTITION for
a partition that does not exist (the others of the request: OPERATION_NOT_ATTEMPTED).

Deviation from Kafka: v5 (transactions v2, KIP-890) is not served; clients use it only when a broker
advertises the transaction.version feature, which kop does not.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class

API_KEY = 24


async def _results(ctx, tid: str, producer_id: int, producer_epoch: int, topics, verify_only: bool = False):
    namespace = ctx.backend.namespace.path
    keys = [(namespace, t.name, p) for t in topics for p in t.partitions]
    try:
        if verify_only:
            errors = await ctx.transactions.verify_partitions(ctx.group_key(tid), producer_id, producer_epoch, keys)
        else:
            errors = await ctx.transactions.add_partitions(ctx.group_key(tid), producer_id, producer_epoch, keys)
    except KafkaError as exc:
        errors = {key: exc.code for key in keys}
    resp = response_class(API_KEY)
    return [resp.AddPartitionsToTxnTopicResult(name=t.name, results_by_partition=[
        resp.AddPartitionsToTxnTopicResult.AddPartitionsToTxnPartitionResult(
            partition_index=p, partition_error_code=errors[(namespace, t.name, p)]) for p in t.partitions])
        for t in topics]


@handler(API_KEY, 0, 4)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    if ctx.version <= 3:
        results = await _results(ctx, request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
                                 request.v3_and_below_producer_epoch, request.v3_and_below_topics)
        return resp(throttle_time_ms=0, results_by_topic_v3_and_below=results)
    by_txn = []
    for txn in request.transactions:
        results = await _results(ctx, txn.transactional_id, txn.producer_id, txn.producer_epoch, txn.topics,
                                 txn.verify_only)
        by_txn.append(resp.AddPartitionsToTxnResult(transactional_id=txn.transactional_id, topic_results=results))
    return resp(throttle_time_ms=0, error_code=ErrorCode.NONE, results_by_transaction=by_txn)


def error_response(request, code):
    resp = response_class(API_KEY)

    def topics(items):
        return [resp.AddPartitionsToTxnTopicResult(name=t.name, results_by_partition=[
            resp.AddPartitionsToTxnTopicResult.AddPartitionsToTxnPartitionResult(
                partition_index=p, partition_error_code=code) for p in t.partitions]) for t in items or []]
    if request.transactions:
        return resp(throttle_time_ms=0, error_code=code, results_by_transaction=[
            resp.AddPartitionsToTxnResult(transactional_id=t.transactional_id, topic_results=topics(t.topics))
            for t in request.transactions])
    return resp(throttle_time_ms=0, error_code=code, results_by_topic_v3_and_below=topics(request.v3_and_below_topics))
