"""Topic configs as Kafka has them: every Kafka 4.1 topic config is accepted and validated as Kafka
validates it, stored with the topic (Pulsar topic properties) and described back with the right
source; bad input is refused by name and changes nothing; validate_only changes nothing; and what a
config means for records is enforced (keys on compacted topics with per-record errors, KIP-467;
timestamp bounds; max.message.bytes)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewTopic)
from kafka.protocol.admin import AlterConfigsRequest, AlterConfigsResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka.record import MemoryRecordsBuilder

from support import RawClient, admin, unique

pytestmark = pytest.mark.pulsar

# What Kafka Streams 4.1 puts on a repartition topic, plus a few more kop only stores.
STREAMS_LIKE = {"cleanup.policy": "delete", "segment.bytes": "52428800", "retention.ms": "-1",
                "message.timestamp.type": "CreateTime", "segment.ms": "600000", "min.insync.replicas": "1",
                "min.cleanable.dirty.ratio": "0.50", "preallocate": "TRUE"}


def _describe(client: AdminClient, topic: str) -> dict:
    res = ConfigResource("TOPIC", topic)
    return client.describe_configs([res])[res].result(30)


def _properties(topic: str) -> dict:
    status, body = admin(f"persistent/public/default/{topic}/properties")
    assert status == 200, body
    return body


def _error(future) -> KafkaError:
    with pytest.raises(Exception) as info:
        future.result(30)
    return info.value.args[0]


def test_every_kafka_config_is_accepted_stored_and_described(gateways):
    gw = gateways()
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    topic = unique("cfg")
    client.create_topics([NewTopic(topic, 1, 1, config=STREAMS_LIKE)])[topic].result(30)
    configs = _describe(client, topic)
    canonical = {**STREAMS_LIKE, "min.cleanable.dirty.ratio": "0.5", "preallocate": "true"}
    for name, value in canonical.items():
        assert configs[name].value == value, name
        assert configs[name].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and not configs[name].is_default, name
    # Kafka's defaults for what the topic does not set, as DEFAULT_CONFIG
    for name, value in (("segment.index.bytes", "10485760"), ("compression.type", "producer"),
                        ("message.timestamp.after.max.ms", "3600000"), ("unclean.leader.election.enable", "false"),
                        ("flush.messages", str(2**63 - 1)), ("leader.replication.throttled.replicas", "")):
        assert configs[name].value == value and configs[name].is_default, name
    assert "internal.segment.bytes" not in configs and len(configs) == 33  # Kafka 4.1: 34 less the internal one
    assert _properties(topic)["kafka.config.segment.bytes"] == "52428800"
    assert admin(f"persistent/public/default/{topic}/retention")[1] == {"retentionTimeInMinutes": -1,
                                                                       "retentionSizeInMB": -1}

    # incremental: SET, DELETE, APPEND, SUBTRACT (lists only)
    res = ConfigResource("TOPIC", topic, incremental_configs=[
        ConfigEntry("segment.ms", "1000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("preallocate", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND)])
    client.incremental_alter_configs([res])[res].result(30)
    configs = _describe(client, topic)
    assert configs["segment.ms"].value == "1000" and configs["cleanup.policy"].value == "delete,compact"
    assert configs["preallocate"].value == "false" and configs["preallocate"].is_default
    assert "kafka.config.preallocate" not in _properties(topic)
    res = ConfigResource("TOPIC", topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)])
    client.incremental_alter_configs([res])[res].result(30)
    assert _describe(client, topic)["cleanup.policy"].value == "compact"
    assert admin(f"persistent/public/default/{topic}/compactionThreshold")[1] > 0

    # legacy AlterConfigs: what it does not list returns to its default
    A = AlterConfigsRequest
    with RawClient(gw.bootstrap) as raw:
        resp = raw.call(A(resources=[A.AlterConfigsResource(resource_type=2, resource_name=topic, configs=[
            A.AlterConfigsResource.AlterableConfig(name="segment.jitter.ms", value="5")])], validate_only=False),
            2, AlterConfigsResponse)
    assert [(r.error_code, r.error_message) for r in resp.responses] == [(0, None)]
    configs = _describe(client, topic)
    assert {n for n, e in configs.items() if not e.is_default} == {"segment.jitter.ms"}
    assert set(k for k in _properties(topic) if k.startswith("kafka.config.")) == {"kafka.config.segment.jitter.ms"}


@pytest.mark.parametrize("config, message", [
    ({"segment.mss": "1"}, "Unknown topic config name: segment.mss"),
    ({"segment.bytes": "100"}, "Invalid value 100 for configuration segment.bytes: Value must be at least 1048576"),
    ({"cleanup.policy": "compact,forever"},
     "Invalid value forever for configuration cleanup.policy: String must be one of: compact, delete"),
    ({"retention.ms": "soon"}, "Invalid value soon for configuration retention.ms: Not a number of type LONG"),
    ({"message.timestamp.type": "createtime"}, "String must be one of: CreateTime, LogAppendTime"),
    ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, "min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"),
    ({"remote.storage.enable": "true"}, "Tiered Storage functionality is disabled in the broker"),
])
def test_bad_configs_are_refused_by_name_and_change_nothing(gateways, config, message):
    gw = gateways()
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    refused = unique("cfg-bad")
    err = _error(client.create_topics([NewTopic(refused, 1, 1, config=config)])[refused])
    assert err.code() == KafkaError.INVALID_CONFIG and message in err.str(), err
    assert admin(f"persistent/public/default/{refused}/partitions")[0] == 404

    topic = unique("cfg-kept")
    client.create_topics([NewTopic(topic, 1, 1, config={"segment.ms": "123456"})])[topic].result(30)
    before = _properties(topic)
    for incremental in (True, False):
        if incremental:
            res = ConfigResource("TOPIC", topic, incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()])
            err = _error(client.incremental_alter_configs([res])[res])
        else:
            res = ConfigResource("TOPIC", topic, set_config=config)
            err = _error(client.alter_configs([res])[res])
        assert err.code() == KafkaError.INVALID_CONFIG and message in err.str(), err
    assert _properties(topic) == before and _describe(client, topic)["segment.ms"].value == "123456"


def test_validate_only_changes_nothing_and_unknown_topics_are_named(gateways):
    gw = gateways()
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    topic = unique("cfg-vo")
    client.create_topics([NewTopic(topic, 1, 1, config={"segment.ms": "5000"})], validate_only=True)[topic].result(30)
    assert admin(f"persistent/public/default/{topic}/partitions")[0] == 404
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    res = ConfigResource("TOPIC", topic, incremental_configs=[
        ConfigEntry("segment.ms", "5000", incremental_operation=AlterConfigOpType.SET)])
    client.incremental_alter_configs([res], validate_only=True)[res].result(30)
    res = ConfigResource("TOPIC", topic, set_config={"retention.ms": "60000"})
    client.alter_configs([res], validate_only=True)[res].result(30)
    configs = _describe(client, topic)
    assert configs["segment.ms"].is_default and configs["retention.ms"].is_default
    missing = ConfigResource("TOPIC", unique("cfg-none"), incremental_configs=[
        ConfigEntry("segment.ms", "5000", incremental_operation=AlterConfigOpType.SET)])
    assert _error(client.incremental_alter_configs([missing])[missing]).code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def _deliveries(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes, int | None]]) -> list:
    """Produce ``messages`` (key, value, timestamp) as one batch; each message's delivery error (or None)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 500, "retries": 0,
                         "enable.idempotence": False})
    results: list = [None] * len(messages)
    for i, (key, value, ts) in enumerate(messages):
        def done(err, _msg, i=i):
            results[i] = err
        producer.produce(topic, value, key=key, partition=0, timestamp=ts or 0, on_delivery=done)
    assert producer.flush(30) == 0
    return results


def test_record_rules_of_a_topic_are_enforced(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    compacted, bounded = unique("cfg-compact"), unique("cfg-bounded")
    client.create_topics([NewTopic(compacted, 1, 1, config={"cleanup.policy": "compact"}),
                          NewTopic(bounded, 1, 1, config={"max.message.bytes": "2000",
                                                          "message.timestamp.before.max.ms": "3600000"})])
    for topic in (compacted, bounded):
        deadline = time.monotonic() + 30
        while admin(f"persistent/public/default/{topic}/partitions")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)

    # a keyless record fails the whole batch with INVALID_RECORD, naming the culprit (KIP-467); the
    # bytes are Kafka 4.1's for the same answer
    P = ProduceRequest
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    for key in (b"k1", None, b"k3"):
        builder.append(int(time.time() * 1000), key, b"v", [])
    builder.close()
    with RawClient(gw.bootstrap) as raw:
        resp = raw.call(P(transactional_id=None, acks=-1, timeout_ms=10000, topic_data=[P.TopicProduceData(
            name=compacted, partition_data=[P.TopicProduceData.PartitionProduceData(index=0, records=builder.buffer())])]),
            9, ProduceResponse)
    [part] = resp.responses[0].partition_responses
    culprit = f"Compacted topic cannot accept message without key in topic partition {compacted}-0."
    assert (part.error_code, part.base_offset) == (KafkaError.INVALID_RECORD, -1)
    assert [(e.batch_index, e.batch_index_error_message) for e in part.record_errors] == [(1, culprit)]
    assert part.error_message.startswith("One or more records have been rejected due to 1 record errors")
    errors = _deliveries(gw.bootstrap, compacted, [(None, b"v2", None)])
    assert errors[0].code() == KafkaError.INVALID_RECORD, errors
    assert _deliveries(gw.bootstrap, compacted, [(b"k1", b"v1", None), (b"k2", b"v2", None)]) == [None, None]

    now = int(time.time() * 1000)
    errors = _deliveries(gw.bootstrap, bounded, [(None, b"future", now + 2 * 3600_000)])
    assert errors[0].code() == KafkaError.INVALID_TIMESTAMP, errors
    errors = _deliveries(gw.bootstrap, bounded, [(None, b"past", now - 2 * 3600_000)])
    assert errors[0].code() == KafkaError.INVALID_TIMESTAMP, errors
    assert _deliveries(gw.bootstrap, bounded, [(None, b"now", None)]) == [None]
    errors = _deliveries(gw.bootstrap, bounded, [(None, b"x" * 3000, None)])
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors
