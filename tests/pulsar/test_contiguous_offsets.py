"""Contiguous Kafka offsets (offsets.mode = "contiguous", backend/entry_index.py) against the real
Pulsar, whose brokers stamp each entry with its index (config/pulsar/standalone-overrides.conf).

A partition starts at 0 and every record gets the next offset, whoever wrote it: kop in either
entry format, another gateway, a native Pulsar producer (batched or not). Each record reads back at
its offset through confluent-kafka, kafka-python and Kafka's own Java consumer; offsets survive a
gateway restart and ledger rollovers; ListOffsets and the watermarks are exact; a fetch past the end
or before the start answers OFFSET_OUT_OF_RANGE; commits made with packed offsets are translated.
"""

from __future__ import annotations

import time

import pulsar
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from support import SERVICE_URL, admin, unique

pytestmark = [pytest.mark.pulsar, pytest.mark.timeout(300)]
CONTIGUOUS = {"KOP_OFFSETS_MODE": "contiguous"}


def create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    client = AdminClient({"bootstrap.servers": bootstrap})
    client.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0, **conf) -> list[int]:
    """The offsets the producer was told, in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", **conf})
    offsets: list[int] = []
    for value in values:
        producer.produce(topic, value, partition=partition,
                         on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset()))
    assert producer.flush(60) == 0
    return offsets


def produce_native(topic: str, values: list[bytes], partition: int = 0, batching: bool = False) -> None:
    client = pulsar.Client(SERVICE_URL, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        producer = client.create_producer(f"persistent://public/default/{topic}-partition-{partition}",
                                          batching_enabled=batching, batching_max_publish_delay_ms=50)
        for value in values:
            producer.send_async(value, None)
        producer.flush()
        producer.close()
    finally:
        client.close()


def read_confluent(bootstrap: str, topic: str, offset: int, count: int, partition: int = 0) -> list[tuple[int, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("c"), "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, offset)])
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 30
    while len(out) < count and time.monotonic() < deadline:
        out += [(m.offset(), m.value()) for m in consumer.consume(100, timeout=1) if not m.error()]
    consumer.close()
    return out[:count]


def read_kafka_python(bootstrap: str, topic: str, offset: int, count: int) -> list[tuple[int, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tp = KpTopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, offset)
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 30
    while len(out) < count and time.monotonic() < deadline:
        for records in consumer.poll(1000).values():
            out += [(r.offset, r.value) for r in records]
    consumer.close()
    return out[:count]


def test_kop_and_native_producers_interleave_into_contiguous_offsets(gateways, kafka_tools):
    gw = gateways(env=CONTIGUOUS)
    topic = unique("contig")
    create(gw.bootstrap, topic)
    expected: list[bytes] = []
    told: list[int] = []
    for round_ in range(3):
        kop_values = [f"kop-{round_}-{i}".encode() for i in range(7)]
        told += produce(gw.bootstrap, topic, kop_values, **{"linger.ms": 20})
        expected += kop_values
        native = [f"native-{round_}-{i}".encode() for i in range(4)]
        produce_native(topic, native, batching=round_ % 2 == 1)  # one batch entry, or four entries
        expected += native
        idempotent = [f"idem-{round_}-{i}".encode() for i in range(3)]
        told += produce(gw.bootstrap, topic, idempotent, **{"enable.idempotence": True})
        expected += idempotent
    got = read_confluent(gw.bootstrap, topic, 0, len(expected))
    assert [o for o, _ in got] == list(range(len(expected))), "offsets are not 0, 1, 2, ..."
    assert [v for _, v in got] == expected
    assert sorted(told) == [o for o, v in got if not v.startswith(b"native")], "Produce answered other offsets"
    # Every record at its own offset, through three clients.
    for offset in (0, 5, 7, 11, len(expected) - 1):
        assert read_confluent(gw.bootstrap, topic, offset, 1) == [(offset, expected[offset])]
        assert read_kafka_python(gw.bootstrap, topic, offset, 1) == [(offset, expected[offset])]
    java = kafka_tools_consume(kafka_tools, gw.bootstrap, topic, 9, 3)
    assert java == [v.decode() for v in expected[9:12]]


def kafka_tools_consume(tools, bootstrap: str, topic: str, offset: int, count: int) -> list[str]:
    import subprocess
    proc = subprocess.run([str(tools), "run", "org.apache.kafka.tools.consumer.ConsoleConsumer",
                           "--bootstrap-server", bootstrap, "--topic", topic, "--partition", "0",
                           "--offset", str(offset), "--max-messages", str(count), "--timeout-ms", "30000"],
                          capture_output=True, timeout=120)
    return proc.stdout.decode().split()


def test_watermarks_list_offsets_and_out_of_range(gateways):
    gw = gateways(env=CONTIGUOUS)
    topic = unique("contig-ends")
    create(gw.bootstrap, topic)
    consumer = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": unique("w"), "auto.offset.reset": "error"})
    assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0), "a new partition starts at 0"
    before = int(time.time() * 1000)
    produce(gw.bootstrap, topic, [b"a", b"b", b"c"], **{"linger.ms": 50})
    time.sleep(0.05)
    middle = int(time.time() * 1000)
    produce(gw.bootstrap, topic, [b"d", b"e"])
    assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 5)
    found = [consumer.offsets_for_times([TopicPartition(topic, 0, stamp)], timeout=10)[0].offset
             for stamp in (before, middle)]  # one request each: librdkafka merges a partition named twice
    assert found == [0, 3]
    consumer.assign([TopicPartition(topic, 0, 9)])  # past the end
    deadline, error = time.monotonic() + 20, None
    while error is None and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is not None:
            error = m.error()
    consumer.close()
    assert error is not None and error.code() == KafkaError._AUTO_OFFSET_RESET, error


def test_offsets_survive_a_gateway_restart_and_ledger_rollovers(gateways):
    topic = unique("contig-restart")
    gw = gateways(env=CONTIGUOUS)
    create(gw.bootstrap, topic)
    first = produce(gw.bootstrap, topic, [f"a{i}".encode() for i in range(120)], **{"linger.ms": 0})
    gw.stop()
    status, _ = admin(f"persistent/public/default/{topic}-partition-0/unload", method="PUT")
    assert status in (200, 204)
    again = gateways(env=CONTIGUOUS)
    second = produce(again.bootstrap, topic, [f"b{i}".encode() for i in range(120)], **{"linger.ms": 0})
    assert first + second == list(range(240))
    got = read_confluent(again.bootstrap, topic, 115, 10)
    assert got == [(o, (b"a%d" % o) if o < 120 else (b"b%d" % (o - 120))) for o in range(115, 125)]
    stats = admin(f"persistent/public/default/{topic}-partition-0/internalStats")[1]
    assert len(stats["ledgers"]) >= 2, "the unload rolled the ledger over"


def test_commits_made_with_packed_offsets_are_translated(gateways):
    topic, group = unique("contig-migrate"), unique("g")
    packed = gateways(env={"KOP_OFFSETS_MODE": "packed"})
    create(packed.bootstrap, topic)
    offsets = produce(packed.bootstrap, topic, [f"r{i}".encode() for i in range(6)], **{"linger.ms": 0})
    consumer = Consumer({"bootstrap.servers": packed.bootstrap, "group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, offsets[4])], asynchronous=False)  # next: the 5th record
    consumer.close()
    packed.stop()
    gw = gateways(env=CONTIGUOUS)
    consumer = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group, "enable.auto.commit": False})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
        if committed == 4:
            break
        time.sleep(0.5)
    consumer.close()
    assert committed == 4, f"the packed commit {offsets[4]} became {committed}, not the 5th record's offset 4"
    assert read_confluent(gw.bootstrap, topic, committed, 2) == [(4, b"r4"), (5, b"r5")]
