"""confluent-kafka (librdkafka) against kop and the real Pulsar: the shared round trip (roundtrip.py)
with the idempotent producer, every codec, both entry formats. The consumer reads by assignment only:
kop serves no group coordination, so it never subscribes, commits or stores offsets."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from roundtrip import PARTITIONS, check, make_records
from support import unique

pytestmark = pytest.mark.pulsar
COUNT = 10_000


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                                  operation_timeout=30, request_timeout=30)
    futures[topic].result(timeout=60)  # raises KafkaException on a topic error
    md = admin.list_topics(topic, timeout=30)
    assert sorted(md.topics[topic].partitions) == list(range(PARTITIONS))


def produce(bootstrap: str, topic: str, records, compression: str) -> None:
    errors: list = []
    delivered: list = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.partition(), msg.offset()))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": compression,
                         "enable.idempotence": True, "linger.ms": 5, "error_cb": errors.append})
    for r in records:
        while True:
            try:
                producer.produce(topic, key=r.key, value=r.value, partition=r.partition,
                                 headers=list(r.headers), on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} records not delivered within 60 s"
    assert not errors, errors[:5]
    assert len(delivered) == len(records)
    for p in range(PARTITIONS):
        offs = [o for part, o in delivered if part == p]
        assert offs == sorted(offs) and len(set(offs)) == len(offs), f"partition {p}: delivery offsets not increasing"


def consume(bootstrap: str, topic: str, count: int) -> dict[int, list[tuple]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("unused-group"),
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "auto.offset.reset": "earliest", "enable.partition.eof": False})
    received: dict[int, list[tuple]] = {}
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        n = 0
        deadline = time.monotonic() + 60
        while n < count and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=1.0):
                assert m.error() is None, m.error()
                received.setdefault(m.partition(), []).append(
                    (m.offset(), m.key(), m.value(), [(k, v) for k, v in (m.headers() or [])]))
                n += 1
        extra = [m for m in consumer.consume(num_messages=10, timeout=0.5)
                 if m.error() is None or m.error().code() != KafkaError._PARTITION_EOF]
        assert not extra, f"unexpected extra messages: {[(m.partition(), m.offset(), m.error()) for m in extra]}"
    finally:
        consumer.close()
    return received


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_round_trip(gateway, compression):
    topic = unique("ck")
    records = make_records(COUNT)
    create_topic(gateway.bootstrap, topic)
    produce(gateway.bootstrap, topic, records, compression)
    check(consume(gateway.bootstrap, topic, COUNT), records)
