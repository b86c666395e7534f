"""OffsetDelete (key 47), version 0: removes a group's commits for some partitions (and the Pulsar
subscription on them). Refused with GROUP_SUBSCRIBED_TO_TOPIC while members of a ``consumer``
group are subscribed to the topic, as in Kafka; a group of another protocol type (Connect's
``connect``, ...) has no subscriptions kop can read, so while it has members the whole request is
NON_EMPTY_GROUP, as Kafka answers it."""

from __future__ import annotations

from kafka.protocol.consumer import ConsumerProtocolSubscription

from ..groups.store import NotOwner
from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 47


def _subscribed_topics(group) -> set[str]:
    topics: set[str] = set()
    if group is None or group.protocol_type != "consumer":
        return topics
    for member in group.members.values():
        try:
            sub = ConsumerProtocolSubscription.decode(member.metadata_for(group.protocol_name))
            topics.update(sub.topics)
        except Exception:  # undecodable metadata: treat as subscribed to nothing we can tell
            continue
    return topics


@handler(API_KEY, 0, 0, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    coordinator = ctx.coordinator
    if (error := coordinator.status(ctx.group_key(request.group_id))) != ErrorCode.NONE:
        return error_response(request, error)
    group = coordinator.groups.get(ctx.group_key(request.group_id))
    if group is None:
        return error_response(request, ErrorCode.GROUP_ID_NOT_FOUND)
    if group.members and group.protocol_type != "consumer":
        return error_response(request, ErrorCode.NON_EMPTY_GROUP)
    subscribed = _subscribed_topics(group)
    deletable, results = [], {}
    for topic in request.topics:
        for part in topic.partitions:
            key = (topic.name, part.partition_index)
            if topic.name in subscribed:
                results[key] = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
            else:
                deletable.append(key)
                results[key] = ErrorCode.NONE
    if deletable:
        try:
            await coordinator.delete_offsets(ctx.group_key(request.group_id), deletable)
        except NotOwner:
            return error_response(request, ErrorCode.NOT_COORDINATOR)
    return resp(error_code=0, throttle_time_ms=0, topics=[resp.OffsetDeleteResponseTopic(name=t.name, partitions=[
        resp.OffsetDeleteResponseTopic.OffsetDeleteResponsePartition(
            partition_index=p.partition_index, error_code=results[(t.name, p.partition_index)])
        for p in t.partitions]) for t in request.topics])


def error_response(request, code):
    return response_class(API_KEY)(error_code=code, throttle_time_ms=0, topics=[])
