"""An idempotent batch that Pulsar holds twice is read once (kop/backend/resends.py).

The Pulsar client resends what awaited a receipt when its connection drops; if the broker had
stored it, the partition holds the entry twice (seen in tests/faults/test_unload.py). Here the
resend is made deterministic: the entry kop wrote is read back with a native Pulsar reader and
published again, byte for byte with its properties, by a native Pulsar producer.
"""

from __future__ import annotations

import asyncio
import time

import pulsar
import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, TopicPartition as TopicPartitionKP

from support import SERVICE_URL, unique

pytestmark = pytest.mark.pulsar

URL = "persistent://public/default/{}-partition-0"


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """One idempotent batch holding ``values``."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 200})
    for v in values:
        producer.produce(topic, value=v, partition=0)
    assert producer.flush(30) == 0


def _resend_last_entry(topic: str, entry_format: str) -> None:
    """Publish the partition's last entry again, as a Pulsar client's resend would."""
    client = pulsar.Client(SERVICE_URL)
    try:
        reader = client.create_reader(URL.format(topic), pulsar.MessageId.earliest)
        messages = []
        while reader.has_message_available():
            messages.append(reader.read_next(10_000))
        reader.close()
        last = messages[-1].message_id()
        entry = [m for m in messages if (m.message_id().ledger_id(), m.message_id().entry_id())
                 == (last.ledger_id(), last.entry_id())]
        assert any("__kafka_producer" in m.properties() for m in entry), "kop wrote no producer identity"
        if entry_format == "kafka":
            producer = client.create_producer(URL.format(topic), batching_enabled=False)
        else:
            producer = client.create_producer(URL.format(topic), batching_enabled=True,
                                              batching_max_publish_delay_ms=60_000, batching_max_messages=1000)
        for m in entry:
            producer.send_async(m.data(), None, properties=m.properties())
        producer.flush()
        producer.close()
    finally:
        client.close()


def _confluent_values(bootstrap: str, topic: str, group: str, expect: int) -> list[bytes]:
    """Values read by a confluent-kafka consumer of ``group``, which then commits its position."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(values) < expect:
        for m in consumer.consume(100, 0.5):
            if m.error() is None:
                values.append(m.value())
    time.sleep(1)  # anything repeated would arrive now
    for m in consumer.consume(100, 1.0):
        if m.error() is None:
            values.append(m.value())
    position = consumer.position([TopicPartition(topic, 0)])[0].offset
    consumer.commit(asynchronous=False, offsets=[TopicPartition(topic, 0, position)])
    consumer.close()
    return values


def test_a_resent_batch_is_read_once_and_stepped_over(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    topic = unique("resent")
    _produce(gw.bootstrap, topic, [b"a0", b"a1", b"a2"])
    group = unique("g")
    first = _confluent_values(gw.bootstrap, topic, group, 3)
    assert first == [b"a0", b"a1", b"a2"]
    _resend_last_entry(topic, entry_format)
    values = _confluent_values(gw.bootstrap, topic, unique("g"), 3)
    assert values == [b"a0", b"a1", b"a2"], values
    _produce(gw.bootstrap, topic, [b"b0"])
    # The group committed between the original and its resend: a new reader starts there.
    later = _confluent_values(gw.bootstrap, topic, group, 1)
    assert later == [b"b0"], later
    everything = _confluent_values(gw.bootstrap, topic, unique("g"), 4)
    assert everything == [b"a0", b"a1", b"a2", b"b0"], everything


def test_other_clients_step_over_a_resent_batch(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    topic = unique("resent")
    _produce(gw.bootstrap, topic, [b"a0", b"a1"])
    _resend_last_entry(topic, entry_format)
    tp = TopicPartitionKP(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=gw.bootstrap, consumer_timeout_ms=5000)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    assert [m.value for m in consumer] == [b"a0", b"a1"]
    # The resend is the last entry: the consumer steps past it (an empty batch) and has no lag.
    assert consumer.position(tp) == consumer.end_offsets([tp])[tp]
    consumer.close()
    _produce(gw.bootstrap, topic, [b"b0"])
    consumer = KafkaConsumer(topic, bootstrap_servers=gw.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000)
    assert [m.value for m in consumer] == [b"a0", b"a1", b"b0"]
    consumer.close()

    async def with_aiokafka() -> list[bytes]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=gw.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            got: list[bytes] = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(got) < 4:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    got.extend(r.value for r in records)
            return got
        finally:
            await consumer.stop()
    assert asyncio.run(with_aiokafka()) == [b"a0", b"a1", b"b0"]
