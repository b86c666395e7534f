"""CreatePartitions (key 37), versions 0-3: grows a topic (Pulsar's update of a partitioned topic).

As in Kafka: the new count must be higher than the current one (INVALID_PARTITIONS otherwise),
``validate_only`` checks without changing anything. Deviation: explicit assignments are refused
with INVALID_REPLICA_ASSIGNMENT (Pulsar places partitions). Existing records keep their offsets; new
partitions start empty.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class
from .topic_admin import existing_topic

API_KEY = 37


@handler(API_KEY, 0, 3)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    results = []
    for topic in request.topics:
        error, message = await _grow(ctx, topic, request.validate_only)
        results.append(resp.CreatePartitionsTopicResult(name=topic.name, error_code=error,
                                                        error_message=message or None))
    return resp(throttle_time_ms=0, results=results)


async def _grow(ctx, topic, validate_only: bool) -> tuple[ErrorCode, str | None]:
    error, message, current = await existing_topic(ctx, topic.name)
    if error:
        return error, message
    if topic.assignments:
        return ErrorCode.INVALID_REPLICA_ASSIGNMENT, "partition placement is Pulsar's"
    if topic.count <= current:
        return ErrorCode.INVALID_PARTITIONS, (f"topic {topic.name!r} has {current} partitions; "
                                              f"the new count ({topic.count}) must be higher")
    if topic.count > 10_000:
        return ErrorCode.INVALID_PARTITIONS, f"{topic.count} partitions is above kop's limit of 10000"
    if validate_only:
        return ErrorCode.NONE, None
    try:
        await ctx.backend.create_partitions(topic.name, topic.count)
    except KafkaError as exc:
        return exc.code, exc.message
    return ErrorCode.NONE, None


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, results=[resp.CreatePartitionsTopicResult(
        name=t.name, error_code=code, error_message=None) for t in request.topics])
