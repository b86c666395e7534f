"""CreateTopics (key 19), versions 2-7.

Creates each topic as a Pulsar partitioned topic in the configured namespace. ``num_partitions``
-1 means ``topics.default_partitions``; ``replication_factor`` -1 or any positive value is accepted
(Pulsar's namespace policies decide replication; kop reports 1). ``validate_only`` checks without
creating.

Topic configs: every config Kafka 4.1 accepts, validated as Kafka does (mapping/topic_configs.py);
an unknown name or a bad value fails the topic with INVALID_CONFIG naming it, checked before
anything is created. They are stored with the topic, and those with a Pulsar meaning become its
Pulsar policies (retention.ms, retention.bytes, max.message.bytes, cleanup.policy); the answer (v5+)
lists the new topic's configs as DescribeConfigs would. A topic that sets no retention
gets Kafka's (``topics.retention_ms``) as its Pulsar retention policy and message TTL unless its
namespace keeps data by itself (backend/kafka_topics.py). If Pulsar refuses a policy the topic is
deleted again, so a topic never exists without the configs it was created with.

Deviations from Kafka: explicit replica assignments are refused with INVALID_REPLICA_ASSIGNMENT;
no topic ids.
"""

from __future__ import annotations

import uuid

from ..backend.api import DEFAULT_CONFIG, TOPIC_CONFIG, ConfigEntry, create_topic, topic_configs
from ..mapping import topic_configs as tc
from ..mapping.topic_config_specs import SPECS
from ..mapping.topics import InvalidTopicName, check_kafka_name, is_hidden
from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class
from .topic_admin import parse_all

API_KEY = 19


@handler(API_KEY, 2, 7)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    results = []
    for topic in request.topics:
        partitions = topic.num_partitions if topic.num_partitions != -1 else ctx.config.topics.default_partitions
        code, message, configs = await _create(ctx, topic, partitions, request.validate_only)
        results.append(resp.CreatableTopicResult(
            name=topic.name, topic_id=uuid.UUID(int=0), error_code=code, error_message=message or None,
            num_partitions=partitions if code == 0 else -1, replication_factor=1 if code == 0 else -1,
            configs=[resp.CreatableTopicResult.CreatableTopicConfigs(
                name=e.name, value=e.value, read_only=False, config_source=e.source, is_sensitive=False)
                for e in configs] if ctx.version >= 5 else []))
    return resp(throttle_time_ms=0, topics=results)


async def _create(ctx, topic, partitions: int, validate_only: bool) -> tuple[int, str, list]:
    try:
        check_kafka_name(topic.name)
    except InvalidTopicName as exc:
        return ErrorCode.INVALID_TOPIC_EXCEPTION, str(exc), []
    if is_hidden(topic.name):
        return ErrorCode.INVALID_TOPIC_EXCEPTION, "names starting with '__' are reserved", []
    if partitions < 1:
        return ErrorCode.INVALID_PARTITIONS, f"num_partitions {partitions} must be at least 1", []
    if topic.replication_factor == 0 or topic.replication_factor < -1:
        return ErrorCode.INVALID_REPLICATION_FACTOR, f"replication_factor {topic.replication_factor}", []
    if topic.assignments:
        return ErrorCode.INVALID_REPLICA_ASSIGNMENT, "replica assignments are decided by Pulsar", []
    values, problem = parse_all((c.name, c.value) for c in topic.configs or [])
    if problem is None:
        try:
            tc.validate_together(values)
        except tc.InvalidConfig as exc:
            problem = str(exc)
    if problem:
        return ErrorCode.INVALID_CONFIG, problem, []
    try:
        if await ctx.backend.partition_count(topic.name, fresh=True) > 0:
            return ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {topic.name!r} already exists", []
        if validate_only:
            return ErrorCode.NONE, "", _as_created(values)
        await create_topic(ctx.backend, topic.name, partitions, values)
        return ErrorCode.NONE, "", list((await topic_configs(ctx.backend, topic.name)).values())
    except KafkaError as exc:
        return exc.code, exc.message, []


def _as_created(values: dict) -> list[ConfigEntry]:
    """The configs a topic would be created with (validate_only: nothing to ask Pulsar about)."""
    return [ConfigEntry(name, tc.render(name, values[name]), TOPIC_CONFIG) if name in values
            else ConfigEntry(name, spec.default or "", DEFAULT_CONFIG)
            for name, spec in sorted(SPECS.items()) if not spec.internal]


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, topics=[resp.CreatableTopicResult(
        name=t.name, topic_id=uuid.UUID(int=0), error_code=code, error_message="unexpected server error",
        num_partitions=-1, replication_factor=-1, configs=[]) for t in request.topics])
