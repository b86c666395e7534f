"""DeleteTopics (key 20), versions 1-6.

Deletes the Pulsar partitioned topic (forcefully: producers and readers on it are closed) after
closing kop's own producers and readers on its partitions.

Deviations from Kafka: deleting by topic id (v6) answers UNKNOWN_TOPIC_ID (ids are not kept).
"""

from __future__ import annotations

import uuid

from ..mapping.topics import InvalidTopicName, check_kafka_name
from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class

API_KEY = 20


@handler(API_KEY, 1, 6)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    if ctx.version >= 6:
        names = [t.name for t in request.topics]
    else:
        names = list(request.topic_names)
    results = []
    for name in names:
        code, message = await _delete(ctx, name)
        results.append(resp.DeletableTopicResult(name=name, topic_id=uuid.UUID(int=0), error_code=code,
                                                 error_message=message or None))
    return resp(throttle_time_ms=0, responses=results)


async def _delete(ctx, name: str | None) -> tuple[int, str]:
    if name is None:
        return ErrorCode.UNKNOWN_TOPIC_ID, "topic ids are not supported"
    try:
        check_kafka_name(name)
        await ctx.backend.delete_topic(name)
    except InvalidTopicName as exc:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, str(exc)
    except KafkaError as exc:
        return exc.code, exc.message
    return ErrorCode.NONE, ""


def error_response(request, code):
    resp = response_class(API_KEY)
    names = [t.name for t in request.topics] if request.topics else list(request.topic_names or [])
    return resp(throttle_time_ms=0, responses=[resp.DeletableTopicResult(
        name=n, topic_id=uuid.UUID(int=0), error_code=code, error_message="unexpected server error")
        for n in names])
