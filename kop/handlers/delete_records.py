"""DeleteRecords (key 21), versions 0-2.

Moves each named partition's log start offset (backend/log_start.py): kept in Pulsar (a property of
the topic), so it survives restarts and every gateway of a fleet shares it. Afterwards ListOffsets
"earliest" answers at least the new start, and a Fetch below it gets OFFSET_OUT_OF_RANGE (so
consumers reset as their ``auto.offset.reset`` says), as in Kafka. ``offset`` -1 means the high
watermark; an offset beyond the high watermark gets OFFSET_OUT_OF_RANGE, an unknown topic or
partition UNKNOWN_TOPIC_OR_PARTITION; neither changes anything. An offset at or below the current
start changes nothing and answers the current start.

Deviations from Kafka:
- Offsets are packed Pulsar positions (mapping/offsets.py); the start may name no record, and a
  fetch there continues at the next one.
- Records before the start are not deleted on the spot: kop moves the Kafka groups' Pulsar
  subscriptions behind it up to it and asks Pulsar to trim, and Pulsar deletes the ledgers wholly
  before the start once its retention allows (at once with retention 0, after retention.ms
  otherwise, never with retention.ms=-1).
- ``timeout_ms`` is not used: each partition is answered once Pulsar has stored its new start.
"""

from __future__ import annotations

from ..backend.api import delete_records
from ..mapping.topics import InvalidTopicName, check_kafka_name, is_hidden
from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class

API_KEY = 21


@handler(API_KEY, 0, 2)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    T = resp.DeleteRecordsTopicResult
    topics = []
    for topic in request.topics:
        results = []
        for part in topic.partitions:
            low_watermark, error = -1, ErrorCode.NONE
            try:
                await _check(ctx.backend, topic.name, part.partition_index)
                low_watermark = await delete_records(ctx.backend, topic.name, part.partition_index,
                                                               part.offset)
            except KafkaError as exc:
                error = exc.code
            results.append(T.DeleteRecordsPartitionResult(partition_index=part.partition_index,
                                                          low_watermark=low_watermark, error_code=error))
        topics.append(T(name=topic.name, partitions=results))
    return resp(throttle_time_ms=0, topics=topics)


async def _check(backend, topic: str, partition: int) -> None:
    try:
        check_kafka_name(topic)
    except InvalidTopicName as exc:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, str(exc)) from exc
    if is_hidden(topic) or not 0 <= partition < await backend.partition_count(topic, fresh=True):
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{partition} does not exist")


def error_response(request, code):
    resp = response_class(API_KEY)
    T = resp.DeleteRecordsTopicResult
    return resp(throttle_time_ms=0, topics=[T(name=t.name, partitions=[T.DeleteRecordsPartitionResult(
        partition_index=p.partition_index, low_watermark=-1, error_code=code) for p in t.partitions])
        for t in request.topics])
