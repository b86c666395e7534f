"""Kafka clients and native Pulsar clients share topics (``pulsar`` entry format only): what a Kafka
producer writes through kop is an ordinary Pulsar message to a Pulsar consumer, and what a Pulsar
producer writes is an ordinary Kafka record to a Kafka consumer, as documented in
kop/backend/convert.py. Offsets are packed Pulsar positions (kop/mapping/offsets.py), so the two
sides' positions are checked against each other too."""

from __future__ import annotations

import base64
import json
import time

import pulsar
import pytest
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer
from confluent_kafka import TopicPartition as CkTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from kop.mapping import offsets
from support import CONTIGUOUS, SERVICE_URL, admin, unique

pytestmark = pytest.mark.pulsar
NS = "public/default"


@pytest.fixture
def gw(gateways):
    return gateways("--entry-format", "pulsar")


@pytest.fixture
def pulsar_client(request):
    request.getfixturevalue("pulsar")  # the fixture's name shadows the module here
    client = pulsar.Client(SERVICE_URL, operation_timeout_seconds=30)
    yield client
    client.close()


def create_kafka_topic(bootstrap: str, topic: str, partitions: int) -> None:
    adm = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        adm.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        adm.close()


def partition_url(topic: str, p: int) -> str:
    return f"persistent://{NS}/{topic}-partition-{p}"


def position(msg_id) -> tuple[int, int, int]:
    return msg_id.ledger_id(), msg_id.entry_id(), max(msg_id.batch_index(), 0)


def read_all(client, url: str, count: int, timeout_ms: int = 10_000) -> list:
    reader = client.create_reader(url, pulsar.MessageId.earliest)
    try:
        msgs = [reader.read_next(timeout_ms) for _ in range(count)]
        assert not reader.has_message_available(), "more messages than were written"
    finally:
        reader.close()
    return msgs


# -- (a) Kafka producer -> native Pulsar reader ---------------------------------------------------

TS = 1_600_000_000_123
# (key, value, headers, timestamp_ms); the comment says what the Pulsar side must see.
KAFKA_RECORDS = [
    # plain: UTF-8 key, headers unique, UTF-8 and in name order -> properties only
    (b"user-1", b"hello", [("a", b"1"), ("b", b"two")], None),
    # tombstone with an explicit timestamp
    (b"user-1", None, [], TS),
    # explicit timestamp, binary header value, repeated name, names out of order -> __kafka_headers
    (b"user-2", b"\x00\x01\xfe\xff", [("z", b"\xff\x00\x80"), ("a", b"first"), ("a", b"second")], TS + 1),
    # UTF-8 values and unique names, but not in name order -> __kafka_headers
    (b"user-3", b"v3", [("b", b"1"), ("a", b"2")], TS + 2),
    # no key
    (None, b"keyless", [("only", b"one")], TS + 3),
    # non-UTF-8 key -> base64 partition key with __kafka_key_b64
    (b"\xff\xfekey", b"binkey", [], TS + 4),
    # empty key: not "no key"
    (b"", b"emptykey", [], TS + 5),
    # non-ASCII UTF-8 key and header, empty value (not null)
    ("schlüssel-✓".encode(), b"", [("grüße", "wörld".encode())], TS + 6),
]


def test_kafka_producer_to_pulsar_reader(gw, pulsar_client):
    topic = unique("interop-k2p")
    create_kafka_topic(gw.bootstrap, topic, 2)
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap, acks="all", linger_ms=20)
    before = int(time.time() * 1000)
    futures = [producer.send(topic, key=k, value=v, headers=h, timestamp_ms=ts, partition=1)
               for k, v, h, ts in KAFKA_RECORDS]
    producer.flush(30)
    metas = [f.get(timeout=30) for f in futures]
    after = int(time.time() * 1000)
    producer.close()

    msgs = read_all(pulsar_client, partition_url(topic, 1), len(KAFKA_RECORDS))
    # Nothing went to the other partition.
    assert read_all(pulsar_client, partition_url(topic, 0), 0) == []

    for i, ((key, value, headers, ts), meta, msg) in enumerate(zip(KAFKA_RECORDS, metas, msgs)):
        where = f"record {i}"
        if CONTIGUOUS:  # the partition's i-th record
            assert meta.offset == i, where
        else:  # the packed Pulsar position of that very message
            assert offsets.unpack(meta.offset) == position(msg.message_id()), where
        # value / tombstone
        assert msg.data() == (value if value is not None else b""), where
        assert msg.has_null_value() is (value is None), where
        props = msg.properties()
        # key
        if key is None:
            assert msg.partition_key() == "", where
            assert "__kafka_key_b64" not in props, where
        else:
            try:
                text = key.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text:
                assert msg.partition_key() == text, where
                assert "__kafka_key_b64" not in props, where
            else:
                assert msg.partition_key() == base64.b64encode(key).decode(), where
                assert props.get("__kafka_key_b64") == "1", where
        # timestamp
        if ts is None:
            assert before <= msg.event_timestamp() <= after, where
        else:
            assert msg.event_timestamp() == ts, where
        assert "__kafka_ts" not in props, where
        # headers
        user_props = {n: v for n, v in props.items() if not n.startswith("__kafka_")}
        names = [n for n, _ in headers]
        plain = (len(set(names)) == len(names) and names == sorted(names)
                 and all(_utf8(v) for _, v in headers))
        if plain:
            assert "__kafka_headers" not in props, where
            assert user_props == {n: v.decode() for n, v in headers}, where
        else:
            exact = [(n, None if v is None else base64.b64decode(v)) for n, v in json.loads(props["__kafka_headers"])]
            assert exact == headers, where
            # and a readable copy for Pulsar consumers: last value of a name wins, invalid UTF-8 replaced
            assert user_props == {n: v.decode("utf-8", "replace") for n, v in headers}, where

    # The record with repeated / binary headers, spelled out.
    props = msgs[2].properties()
    assert json.loads(props["__kafka_headers"]) == [
        ["z", base64.b64encode(b"\xff\x00\x80").decode()],
        ["a", base64.b64encode(b"first").decode()],
        ["a", base64.b64encode(b"second").decode()]]
    assert props["a"] == "second"

    # And the Kafka consumer gets exactly what the Kafka producer sent.
    got = kafka_python_read(gw.bootstrap, topic, 1, len(KAFKA_RECORDS))
    for (key, value, headers, ts), meta, (off, k, v, h, t) in zip(KAFKA_RECORDS, metas, got):
        assert (off, k, v, h) == (meta.offset, key, value, headers)
        assert t == (ts if ts is not None else meta.timestamp)


def _utf8(v: bytes | None) -> bool:
    if v is None:
        return False
    try:
        v.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# -- (b) native Pulsar producer -> Kafka consumers ------------------------------------------------

# (partition_key or None, payload or None for a null value, properties, event_timestamp or None)
PULSAR_MESSAGES = [
    ("k1", b"payload-1", {"b": "2", "a": "1", "c": "3"}, TS),
    (None, b"no key", {}, TS + 10),
    ("clé-✓", b"\x00\xff binary payload", {"grüße": "wörld ✓", "x-trace": "abc"}, TS + 20),
    ("k4", b"", {"empty": ""}, None),  # no event time: the Kafka timestamp is the publish time
    ("gone", None, {"reason": "deleted"}, TS + 30),  # Pulsar's null-value flag: a Kafka tombstone
]


def kafka_python_read(bootstrap: str, topic: str, partition: int, count: int) -> list[tuple]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    try:
        consumer.assign([TopicPartition(topic, partition)])
        consumer.seek_to_beginning()
        out = []
        for m in consumer:
            out.append((m.offset, m.key, m.value, list(m.headers), m.timestamp))
            assert m.timestamp_type == 0, "CreateTime expected"
            if len(out) >= count:
                break
    finally:
        consumer.close()
    assert len(out) == count, f"read {len(out)} of {count} records"
    return out


def confluent_read(bootstrap: str, topic: str, partition: int, count: int) -> list[tuple]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("unused"),
                         "enable.auto.commit": False, "enable.auto.offset.store": False})
    out = []
    try:
        consumer.assign([CkTopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 20
        while len(out) < count and time.monotonic() < deadline:
            m = consumer.poll(1.0)
            if m is None:
                continue
            assert m.error() is None, m.error()
            ts_type, ts = m.timestamp()
            assert ts_type == TIMESTAMP_CREATE_TIME
            out.append((m.offset(), m.key(), m.value(), list(m.headers() or []), ts))
    finally:
        consumer.close()
    assert len(out) == count, f"read {len(out)} of {count} records"
    return out


def send_native(client, url: str, batching: bool, compression=pulsar.CompressionType.NONE) -> list:
    producer = client.create_producer(url, batching_enabled=batching, batching_max_publish_delay_ms=50,
                                      compression_type=compression)
    try:
        if not batching:
            ids = []
            for key, payload, props, ts in PULSAR_MESSAGES:
                ids.append(producer.send(payload, properties=props, partition_key=key, event_timestamp=ts))
        else:  # all messages in one Pulsar batch entry
            ids: list = [None] * len(PULSAR_MESSAGES)
            errors = []

            def callback(i):
                def cb(res, msg_id):
                    if res != pulsar.Result.Ok:
                        errors.append(res)
                    ids[i] = msg_id
                return cb
            for i, (key, payload, props, ts) in enumerate(PULSAR_MESSAGES):
                producer.send_async(payload, callback(i), properties=props, partition_key=key, event_timestamp=ts)
            producer.flush()
            assert not errors, errors
            assert len({(m.ledger_id(), m.entry_id()) for m in ids}) == 1, "expected a single batch entry"
    finally:
        producer.close()
    return ids


@pytest.mark.parametrize("created_by", ["kop", "pulsar-admin"])
@pytest.mark.parametrize("batching,compression", [
    (False, pulsar.CompressionType.NONE), (True, pulsar.CompressionType.NONE), (True, pulsar.CompressionType.ZSTD),
    (False, pulsar.CompressionType.LZ4)], ids=["single", "batched", "batched-zstd", "single-lz4"])
def test_pulsar_producer_to_kafka_consumers(gw, pulsar_client, created_by, batching, compression):
    topic = unique("interop-p2k")
    if created_by == "kop":
        create_kafka_topic(gw.bootstrap, topic, 2)
    else:
        status, body = admin(f"persistent/{NS}/{topic}/partitions", "PUT", 2)
        assert status in (200, 204), (status, body)
    ids = send_native(pulsar_client, partition_url(topic, 0), batching, compression)
    # The publish times, for the message without an event time.
    native = read_all(pulsar_client, partition_url(topic, 0), len(PULSAR_MESSAGES))

    expected = []
    for i, ((key, payload, props, ts), msg_id, msg) in enumerate(zip(PULSAR_MESSAGES, ids, native)):
        assert position(msg.message_id()) == position(msg_id)
        assert msg.has_null_value() is (payload is None)
        expected.append((i if CONTIGUOUS else offsets.pack(*position(msg_id)), None if key is None else key.encode(), payload,
                         [(n, v.encode()) for n, v in sorted(props.items())],
                         ts if ts is not None else msg.publish_timestamp()))
    offs = [e[0] for e in expected]
    assert offs == sorted(set(offs))

    assert kafka_python_read(gw.bootstrap, topic, 0, len(expected)) == expected
    assert confluent_read(gw.bootstrap, topic, 0, len(expected)) == expected
