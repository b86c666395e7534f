"""kafka-python 3 (pure Python; idempotent producer by default) against kop and the real Pulsar."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from roundtrip import PARTITIONS, check, make_records
from support import unique

pytestmark = pytest.mark.pulsar
COUNT = 10_000


def produce(bootstrap: str, topic: str, records, compression: str | None) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=compression,
                             linger_ms=5, batch_size=64 * 1024)
    futures = [producer.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers))
               for r in records]
    producer.flush(60)
    for f in futures:
        f.get(timeout=60)
    producer.close()


def consume(bootstrap: str, topic: str, count: int) -> dict[int, list[tuple]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    received: dict[int, list[tuple]] = {}
    n = 0
    for message in consumer:
        received.setdefault(message.partition, []).append(
            (message.offset, message.key, message.value, [(k, v) for k, v in message.headers]))
        n += 1
        if n >= count:
            break
    consumer.close()
    return received


@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
def test_round_trip(gateway, compression):
    topic = unique("kp")
    records = make_records(COUNT)
    produce(gateway.bootstrap, topic, records, compression)
    check(consume(gateway.bootstrap, topic, COUNT), records)
