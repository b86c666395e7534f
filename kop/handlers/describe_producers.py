"""DescribeProducers (key 61), version 0.

The idempotent and transactional producers of each partition (``kafka-transactions.sh
describe-producers``): id, epoch, last sequence and last write time, and the start of the producer's
open transaction there (its start bound, kop/txn/index.py), or -1.

Deviation from Kafka: a partition's producers are those this gateway has written for (or read back
before an idempotent write, backend/producer_recovery.py); with several gateways, a producer that
wrote only through another one is listed by that one. Ask the partition's leader, as Kafka's tool
does: clients produce to it.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class

API_KEY = 61


async def _partitions(ctx, resp, topic):
    try:
        count = await ctx.backend.partition_count(topic.name)
    except KafkaError as exc:
        count, failure = 0, exc.code
    else:
        failure = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    out = []
    namespace = ctx.backend.namespace.path
    for index in topic.partition_indexes:
        if not 0 <= index < count:
            out.append(resp.TopicResponse.PartitionResponse(partition_index=index, error_code=failure,
                                                            error_message=None, active_producers=[]))
            continue
        log = ctx.backend.partition_log(topic.name, index)
        active = [resp.TopicResponse.PartitionResponse.ProducerState(
            producer_id=pid, producer_epoch=epoch, last_sequence=last_seq, last_timestamp=last_ms,
            coordinator_epoch=0,
            current_txn_start_offset=_open_start(ctx, (namespace, topic.name, index), pid))
            for pid, epoch, last_seq, last_ms in log.producers.active()]
        out.append(resp.TopicResponse.PartitionResponse(partition_index=index, error_code=ErrorCode.NONE,
                                                        error_message=None, active_producers=active))
    return out


def _open_start(ctx, key, producer_id: int) -> int:
    start = ctx.txn_view.index.open_transaction_of(key, producer_id)
    return -1 if start is None else start


@handler(API_KEY, 0, 0)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, topics=[resp.TopicResponse(name=t.name, partitions=await _partitions(ctx, resp, t))
                                           for t in request.topics])


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, topics=[resp.TopicResponse(name=t.name, partitions=[
        resp.TopicResponse.PartitionResponse(partition_index=i, error_code=code, error_message=None,
                                             active_producers=[]) for i in t.partition_indexes])
        for t in request.topics])
