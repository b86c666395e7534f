"""Metadata (key 3), versions 0-13.

Lists every live gateway of the fleet as a broker (backend/fleet.py) and the Kafka topics of the
configured namespace, i.e. its Pulsar partitioned topics. The leader (and sole replica and ISR) of a
partition is ``place("topic/partition", live gateways)`` (rendezvous hashing,
mapping/placement.py), so client connections spread over the fleet and only the partitions of a
gateway that dies move; the controller is the live gateway with the lowest node id. A requested topic that does
not exist is created as a Pulsar partitioned topic with ``topics.default_partitions`` partitions
when ``topics.auto_create`` is on and the client allows it (``allow_auto_topic_creation``, v4+), with
Kafka's default configs (its retention: backend/kafka_topics.py).

Deviations from Kafka:
- Topic ids are not kept: ``topic_id`` is the zero UUID (Kafka's "no id"), so clients fall back to
  names; Fetch is served up to v12 and Produce up to v12 for that reason.
- Non-partitioned Pulsar topics and Pulsar-internal topics (``__change_events``…) are not listed.
- Any gateway serves any partition (Pulsar orders the writes), so Produce and Fetch sent to a
  gateway that is not the partition's leader are served, not refused with NOT_LEADER_OR_FOLLOWER:
  clients whose view of the fleet is a refresh behind keep working.
- Leader epochs are reported as 0; no authorized operations are computed (-2147483648, "not asked").
"""

from __future__ import annotations

import uuid

from ..backend.api import create_topic
from ..mapping.placement import place, topic_partition_key
from ..mapping.topics import InvalidTopicName, check_kafka_name, is_hidden
from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class

API_KEY = 3
ZERO_UUID = uuid.UUID(int=0)


@handler(API_KEY, 0, 13)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    backend, cfg = ctx.backend, ctx.config
    nodes = reachable_nodes(ctx)
    live = [node_id for node_id, _ in nodes]
    if request.topics is None:
        names = sorted((await backend.list_topics()).items())
        wanted = [(name, count, ErrorCode.NONE) for name, count in names]
    else:
        allow_create = cfg.topics.auto_create and (ctx.version < 4 or request.allow_auto_topic_creation)
        wanted = [await describe_topic(backend, cfg, t.name, allow_create) for t in request.topics]
    topics = []
    for name, count, error in wanted:
        leaders = partition_leaders(name, range(count), live)
        partitions = [resp.MetadataResponseTopic.MetadataResponsePartition(
            error_code=0, partition_index=p, leader_id=leader, leader_epoch=0, replica_nodes=[leader],
            isr_nodes=[leader], offline_replicas=[]) for p, leader in enumerate(leaders)]
        topics.append(resp.MetadataResponseTopic(error_code=error, name=name, topic_id=ZERO_UUID,
                                                 is_internal=False, partitions=partitions))
    brokers = [resp.MetadataResponseBroker(node_id=node_id, host=host, port=port, rack=None)
               for node_id, (host, port) in nodes]
    return resp(throttle_time_ms=0, brokers=brokers, cluster_id=cfg.server.cluster_id,
                controller_id=min(live), topics=topics, error_code=0)


# How old a partition count a Metadata answer may use: another gateway (or worker) may have grown the
# topic; clients ask Metadata again exactly when they meet a partition they do not know.
METADATA_COUNT_AGE_S = 0.5


def reachable_nodes(ctx) -> list[tuple[int, tuple[str, int]]]:
    """The gateways reachable through the listener this client uses (every gateway, when the fleet
    is configured alike), with their addresses for that listener."""
    listener = ctx.listener.name if ctx.listener is not None else None
    return [(n.node_id, n.address_for(listener)) for n in ctx.fleet.nodes() if n.address_for(listener)]


def partition_leaders(topic: str, partitions: range, live: list[int]) -> list[int]:
    """The leader of each partition of ``topic`` in ``partitions``, placed on the live gateways."""
    return [place(topic_partition_key(topic, p), live) if len(live) > 1 else live[0] for p in partitions]


async def describe_topic(backend, cfg, name, allow_create) -> tuple[str, int, ErrorCode]:
    """(name, partition count, error) of a requested topic, creating it first if allowed and missing."""
    if name is None:
        return "", 0, ErrorCode.UNKNOWN_TOPIC_ID  # topic ids are not kept (see the docstring)
    try:
        check_kafka_name(name)
    except InvalidTopicName:
        return name, 0, ErrorCode.INVALID_TOPIC_EXCEPTION
    if is_hidden(name):
        return name, 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    try:
        count = await backend.partition_count(name, max_age_s=METADATA_COUNT_AGE_S)
        if count == 0 and allow_create:
            try:
                await create_topic(backend, name, cfg.topics.default_partitions, {})
            except KafkaError as exc:
                if exc.code != ErrorCode.TOPIC_ALREADY_EXISTS:  # another client raced us: fine
                    raise
            count = await backend.partition_count(name, fresh=True)
    except KafkaError as exc:
        return name, 0, exc.code
    if count == 0:
        return name, 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    return name, count, ErrorCode.NONE


def error_response(request, code):
    resp = response_class(API_KEY)
    topics = [resp.MetadataResponseTopic(error_code=code, name=t.name, topic_id=ZERO_UUID, is_internal=False,
                                         partitions=[]) for t in (request.topics or [])]
    return resp(throttle_time_ms=0, brokers=[], cluster_id=None, controller_id=-1, topics=topics,
                error_code=code)
