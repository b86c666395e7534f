"""Topic configs parsed and validated as Kafka 4.1 does it (the messages below are what Kafka 4.1.2's
own LogConfig.validate says for the same input), and the record rules a topic's configs impose."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from kop.backend import record_rules
from kop.mapping import topic_configs as tc
from kop.mapping.topic_config_specs import SPECS
from kop.mapping.topics import Namespace
from kop.protocol.errors import ErrorCode, KafkaError
from kop.protocol.records import Record, build_batch, split_batches


@pytest.mark.parametrize("name, value, canonical", [
    ("cleanup.policy", "", ""), ("cleanup.policy", "compact, delete", "compact,delete"),
    ("retention.ms", " 100 ", "100"), ("retention.bytes", "-5", "-5"), ("min.cleanable.dirty.ratio", "0.50", "0.5"),
    ("min.cleanable.dirty.ratio", "1e-1", "0.1"), ("preallocate", "TRUE", "true"),
    ("message.timestamp.type", "LogAppendTime", "LogAppendTime"), ("compression.gzip.level", "-1", "-1"),
    ("leader.replication.throttled.replicas", "*", "*"), ("leader.replication.throttled.replicas", "0:1,1:2", "0:1,1:2"),
    ("internal.segment.bytes", "1", "1"),
])
def test_accepted_values_and_their_canonical_form(name, value, canonical):
    assert tc.canonical(name, value) == canonical


@pytest.mark.parametrize("name, value, message", [
    ("cleanup.policy", "compact,foo", "Invalid value foo for configuration cleanup.policy: String must be one of: compact, delete"),
    ("cleanup.policy", "COMPACT", "Invalid value COMPACT for configuration cleanup.policy: String must be one of: compact, delete"),
    ("retention.ms", "-2", "Invalid value -2 for configuration retention.ms: Value must be at least -1"),
    ("retention.ms", "1.5", "Invalid value 1.5 for configuration retention.ms: Not a number of type LONG"),
    ("segment.bytes", "100", "Invalid value 100 for configuration segment.bytes: Value must be at least 1048576"),
    ("segment.bytes", "99999999999", "Invalid value 99999999999 for configuration segment.bytes: Not a number of type INT"),
    ("min.cleanable.dirty.ratio", "1.5", "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
    ("preallocate", "yes", "Invalid value yes for configuration preallocate: Expected value to be either true or false"),
    ("message.timestamp.type", "createtime", "Invalid value createtime for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"),
    ("compression.type", "ZSTD", "Invalid value ZSTD for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
    ("compression.gzip.level", "0", "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1"),
    ("compression.zstd.level", "23", "Invalid value 23 for configuration compression.zstd.level: Value must be no more than 22"),
    ("leader.replication.throttled.replicas", "0-1", "Invalid value [0-1] for configuration leader.replication.throttled.replicas: leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
    ("foo.bar", "1", "Unknown topic config name: foo.bar"),
    ("segment.ms", None, "Null value not supported for topic configs: segment.ms"),
])
def test_refused_values_say_what_kafka_says(name, value, message):
    with pytest.raises(tc.InvalidConfig) as info:
        tc.parse(name, value)
    assert str(info.value) == message


def test_the_table_is_kafka_41s():
    assert len(SPECS) == 34 and [s.name for s in SPECS.values() if s.internal] == ["internal.segment.bytes"]
    for spec in SPECS.values():
        if spec.default is not None:
            assert tc.canonical(spec.name, spec.default) == spec.default, spec.name
        assert spec.kop in ("pulsar", "enforced", "stored")


def test_rules_across_configs():
    tc.validate_together({"min.compaction.lag.ms": 5, "max.compaction.lag.ms": 10})
    with pytest.raises(tc.InvalidConfig, match=r"min.compaction.lag.ms \(10\) > max.compaction.lag.ms \(5\)"):
        tc.validate_together({"min.compaction.lag.ms": 10, "max.compaction.lag.ms": 5})
    with pytest.raises(tc.InvalidConfig, match="Tiered Storage functionality is disabled"):
        tc.validate_together({"remote.storage.enable": True})


def test_java_doubles():
    assert [tc.java_double(x) for x in (0.5, 1.0, 1e-4, 1e7, 0.0)] == ["0.5", "1.0", "1.0E-4", "1.0E7", "0.0"]


def _backend(configs: dict[str, str]):
    properties = {tc.PROPERTY_PREFIX + k: v for k, v in configs.items()}
    return SimpleNamespace(namespace=Namespace("public", "default"),
                           admin=SimpleNamespace(known_properties=lambda _topic: properties))


def _batch(keys, timestamps=None):
    now = int(time.time() * 1000)
    records = [Record(i, (timestamps or [now] * len(keys))[i], k, b"v") for i, k in enumerate(keys)]
    data = build_batch(records, base_offset=0)
    [(header, view)] = split_batches(data)
    return header, view


def test_compacted_topics_refuse_keyless_records_one_by_one():
    backend = _backend({"cleanup.policy": "compact,delete"})
    header, view = _batch([b"a", None, b"c", None])
    with pytest.raises(record_rules.RecordsRefused) as info:
        record_rules.check(backend, "t-compact", 3, header, view)
    assert info.value.code == ErrorCode.INVALID_RECORD
    assert [i for i, _ in info.value.record_errors] == [1, 3]
    assert info.value.record_errors[0][1] == "Compacted topic cannot accept message without key in topic partition t-compact-3."
    record_rules.check(backend, "t-compact", 3, *_batch([b"a", b"b"]))
    record_rules.check(_backend({}), "t-plain", 0, *_batch([None]))


def test_timestamps_and_batch_size():
    now = int(time.time() * 1000)
    header, view = _batch([None, None], [now, now + 2 * 3600_000])
    with pytest.raises(record_rules.RecordsRefused) as info:
        record_rules.check(_backend({}), "t", 0, header, view)  # Kafka 4's default: one hour ahead at most
    assert info.value.code == ErrorCode.INVALID_TIMESTAMP and [i for i, _ in info.value.record_errors] == [1]
    record_rules.check(_backend({"message.timestamp.type": "LogAppendTime"}), "t", 0, header, view)
    old = _batch([None], [now - 7200_000])
    record_rules.check(_backend({}), "t", 0, *old)
    with pytest.raises(record_rules.RecordsRefused):
        record_rules.check(_backend({"message.timestamp.before.max.ms": "3600000"}), "t2", 0, *old)
    with pytest.raises(KafkaError) as too_big:
        record_rules.check(_backend({"max.message.bytes": "10"}), "t3", 0, *_batch([b"k"]))
    assert too_big.value.code == ErrorCode.MESSAGE_TOO_LARGE


def test_zero_retention_is_pulsars_no_retention():
    # Pulsar refuses one limit 0 and the other not; Kafka's 0 keeps nothing either way
    assert tc.retention_to_pulsar(0, -1) == {"retentionTimeInMinutes": 0, "retentionSizeInMB": 0}
    assert tc.retention_to_pulsar(-1, 0) == {"retentionTimeInMinutes": 0, "retentionSizeInMB": 0}
    assert tc.retention_to_pulsar(60_001, -1) == {"retentionTimeInMinutes": 2, "retentionSizeInMB": -1}
