"""DescribeTopicPartitions (key 75, KIP-966), version 0 (all Kafka 4.1 serves).

Metadata's topic half, paginated: the Java AdminClient's describeTopics uses it when a broker
advertises it. Topics and partitions are Metadata's (metadata.py): the Pulsar partitioned topics of
the client's namespace, each partition led by the live gateway that rendezvous placement picks
among those reachable through the client's listener, that gateway its only replica and ISR.

Pagination, as Kafka's broker does it:
- The topics asked for (all of the namespace's when the list is empty), deduplicated, those named
  before the cursor's topic dropped, in name order.
- At most ``response_partition_limit`` partitions are answered, clamped to 1..2000 (2000 is Kafka's
  ``max.request.partition.size.limit`` default). The cursor's topic starts at the cursor's
  partition, every later topic at 0. When the limit cuts a topic, ``next_cursor`` names it and
  its first partition left out; when the limit is used up exactly and topics remain, it names the
  next topic at partition 0 (whether or not that topic exists); when everything fit, it is null.
- A cursor whose topic is not among the topics asked for, or whose partition is negative, is
  INVALID_REQUEST for every topic asked for.
- A topic asked for that does not exist is UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an
  illegal name) and uses none of the limit. Nothing is created: Kafka does not auto-create here.

Deviations from Kafka:
- Topic ids are not kept: ``topic_id`` is the zero UUID (as in Metadata).
- ``topic_authorized_operations`` is not computed: -2147483648 ("not computed"), as kop's Metadata;
  Kafka always fills it here (every topic operation when it has no authorizer). kop has no Kafka
  ACLs: Pulsar's authorization decides.
- Leader epochs are 0; ``eligible_leader_replicas`` and ``last_known_elr`` are empty (one replica,
  no ELR), ``offline_replicas`` too. Topics kop hides (names starting ``__``, Pulsar's own) are
  neither listed nor described (UNKNOWN_TOPIC_OR_PARTITION), so ``is_internal`` is always false.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode, KafkaError
from .metadata import ZERO_UUID, describe_topic, partition_leaders, reachable_nodes
from .registry import handler, response_class

API_KEY = 75
# Kafka's max.request.partition.size.limit (default 2000): the most partitions one answer holds.
MAX_PARTITIONS = 2000
NOT_COMPUTED = -2147483648


@handler(API_KEY, 0, 0)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    Topic = resp.DescribeTopicPartitionsResponseTopic
    Partition = Topic.DescribeTopicPartitionsResponsePartition
    cursor = request.cursor
    first = cursor.topic_name if cursor is not None else ""
    every_topic = not request.topics
    if every_topic:
        try:
            counts = await ctx.backend.list_topics()
        except KafkaError as exc:
            return error_response(request, exc.code)
        names = sorted(name for name in counts if name >= first)
    else:
        names = sorted({t.name for t in request.topics if t.name >= first})
        if cursor is not None and cursor.topic_name not in names:
            return error_response(request, ErrorCode.INVALID_REQUEST)
    if cursor is not None and cursor.partition_index < 0:
        return error_response(request, ErrorCode.INVALID_REQUEST)

    live = [node_id for node_id, _ in reachable_nodes(ctx)]
    remaining = max(min(MAX_PARTITIONS, request.response_partition_limit), 1)
    topics, next_cursor = [], None
    for name in names:
        if remaining == 0:  # the previous topic used the limit up exactly
            next_cursor = resp.Cursor(topic_name=name, partition_index=0)
            break
        if every_topic:
            count, error = counts[name], ErrorCode.NONE
        else:
            _, count, error = await describe_topic(ctx.backend, ctx.config, name, allow_create=False)
        if error != ErrorCode.NONE:
            if not every_topic:
                topics.append(Topic(error_code=error, name=name, topic_id=ZERO_UUID, is_internal=False,
                                    partitions=[], topic_authorized_operations=NOT_COMPUTED))
            continue
        start = cursor.partition_index if cursor is not None and name == first else 0
        end = min(count, start + remaining)
        leaders = partition_leaders(name, range(start, end), live)
        partitions = [Partition(error_code=0, partition_index=p, leader_id=leader, leader_epoch=0,
                                replica_nodes=[leader], isr_nodes=[leader], eligible_leader_replicas=[],
                                last_known_elr=[], offline_replicas=[])
                      for p, leader in zip(range(start, end), leaders)]
        topics.append(Topic(error_code=0, name=name, topic_id=ZERO_UUID, is_internal=False, partitions=partitions,
                            topic_authorized_operations=NOT_COMPUTED))
        if end < count:
            next_cursor = resp.Cursor(topic_name=name, partition_index=end)
            break
        remaining -= len(partitions)
    return resp(throttle_time_ms=0, topics=topics, next_cursor=next_cursor)


def error_response(request, code):
    """Every topic asked for with ``code`` (as Kafka answers a request it rejects whole)."""
    resp = response_class(API_KEY)
    topics = [resp.DescribeTopicPartitionsResponseTopic(
        error_code=code, name=t.name, topic_id=ZERO_UUID, is_internal=False, partitions=[],
        topic_authorized_operations=NOT_COMPUTED) for t in request.topics or []]
    return resp(throttle_time_ms=0, topics=topics, next_cursor=None)
