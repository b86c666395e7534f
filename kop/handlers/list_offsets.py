"""ListOffsets (key 2), versions 1-10.

Timestamps: -1 latest (log end offset), -2 earliest (never below the log start DeleteRecords set,
backend/log_start.py), -3 the record with the largest timestamp
(answered as the last record: Pulsar keeps no timestamp index), -4 earliest local (= earliest:
Pulsar's tiered storage is transparent to readers), and any timestamp >= 0: the first message
*published* at or after it, found with Pulsar's publish-time seek.

With ``isolation_level`` 1 (read_committed), latest is the last stable offset (kop/txn/view.py:
the start of the oldest open transaction), read after waiting for ``__transactions``, so a consumer
starting at the end never skips a transaction still to commit.

Deviations from Kafka:
- With ``offsets.mode = "packed"`` offsets are packed Pulsar positions (mapping/offsets.py): latest -
  earliest is not a count.
- Lookup by timestamp uses Pulsar's publish time (when the broker stored the entry), which is what
  Kafka does for topics with LogAppendTime; for CreateTime topics Kafka searches the record
  timestamps instead. The timestamp answered is the message's event time (the Kafka record
  timestamp) when it has one.
"""

from __future__ import annotations

import logging

from ..backend.api import cached_log_start, current_log_start
from ..mapping.topics import InvalidTopicName, check_kafka_name
from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class

API_KEY = 2
log = logging.getLogger(__name__)
LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL = -1, -2, -3, -4


@handler(API_KEY, 1, 10)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    part_cls = resp.ListOffsetsTopicResponse.ListOffsetsPartitionResponse
    view = ctx.txn_view
    committed = view is not None and ctx.version >= 2 and request.isolation_level == 1
    if committed and any(p.timestamp == LATEST for t in request.topics for p in t.partitions):
        try:
            await view.synced()
        except Exception as exc:  # noqa: BLE001 - __transactions unreachable: the view as it stands
            log.warning("ListOffsets read_committed: __transactions not read to its end: %r", exc)
    topics = []
    for topic in request.topics:
        parts = []
        for part in topic.partitions:
            try:
                offset, stamp = await _lookup(ctx.backend, topic.name, part.partition_index, part.timestamp)
                if committed and part.timestamp == LATEST:
                    offset = view.last_stable_offset((ctx.backend.namespace.path, topic.name, part.partition_index),
                                                     offset)
                error = ErrorCode.NONE
            except KafkaError as exc:
                offset, stamp, error = -1, -1, exc.code
            parts.append(part_cls(partition_index=part.partition_index, error_code=error, timestamp=stamp,
                                  offset=offset, leader_epoch=0, old_style_offsets=[]))
        topics.append(resp.ListOffsetsTopicResponse(name=topic.name, partitions=parts))
    return resp(throttle_time_ms=0, topics=topics)


async def _lookup(backend, topic: str, partition: int, timestamp: int) -> tuple[int, int]:
    try:
        check_kafka_name(topic)
    except InvalidTopicName as exc:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, str(exc)) from exc
    if not 0 <= partition < await backend.partition_count(topic):
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{partition} does not exist")
    if timestamp == LATEST:
        return await backend.latest_offset(topic, partition), -1
    if timestamp in (EARLIEST, EARLIEST_LOCAL):  # not below the log start DeleteRecords set
        return max(await backend.earliest_offset(topic, partition), await current_log_start(backend, topic, partition)), -1
    if timestamp == MAX_TIMESTAMP:
        return await backend.last_record(topic, partition)
    if timestamp < 0:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown special timestamp {timestamp}")
    offset, stamp = await backend.offset_for_timestamp(topic, partition, timestamp)
    if offset >= 0:
        offset = max(offset, cached_log_start(backend, topic, partition))
    return offset, stamp


def error_response(request, code):
    resp = response_class(API_KEY)
    part_cls = resp.ListOffsetsTopicResponse.ListOffsetsPartitionResponse
    return resp(throttle_time_ms=0, topics=[resp.ListOffsetsTopicResponse(name=t.name, partitions=[
        part_cls(partition_index=p.partition_index, error_code=code, timestamp=-1, offset=-1, leader_epoch=-1,
                 old_style_offsets=[]) for p in t.partitions]) for t in request.topics])
