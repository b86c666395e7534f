"""OffsetDelete (key 47), version 0: removes a group's commits for some partitions (and the Pulsar
subscription on them). Refused with GROUP_SUBSCRIBED_TO_TOPIC while members of a ``consumer``
group are subscribed to the topic, as in Kafka; a group of another protocol type (Connect's
``connect``, ...) has no subscriptions kop can read, so while it has members the whole request is
NON_EMPTY_GROUP, as Kafka answers it."""

from __future__ import annotations

from kafka.protocol.consumer import ConsumerProtocolSubscription

from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 47


def _topics_of(metadata: bytes) -> list[str]:
    """The topics a ``consumer`` group member's metadata subscribes to."""
    return ConsumerProtocolSubscription.decode(metadata).topics


@handler(API_KEY, 0, 0, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    wanted = [(topic.name, part.partition_index) for topic in request.topics for part in topic.partitions]
    error, results = await ctx.coordinator.delete_offsets(ctx.group_key(request.group_id), wanted, _topics_of)
    if error != ErrorCode.NONE:
        return error_response(request, error)
    return resp(error_code=0, throttle_time_ms=0, topics=[resp.OffsetDeleteResponseTopic(name=t.name, partitions=[
        resp.OffsetDeleteResponseTopic.OffsetDeleteResponsePartition(
            partition_index=p.partition_index, error_code=results[(t.name, p.partition_index)])
        for p in t.partitions]) for t in request.topics])


def error_response(request, code):
    return response_class(API_KEY)(error_code=code, throttle_time_ms=0, topics=[])
