"""aiokafka 0.14 (asyncio; its own protocol stack and Cython record codec) against kop and the real
Pulsar: the shared round trip (roundtrip.py) for every codec aiokafka supports, both entry formats."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.codec import has_gzip, has_lz4, has_snappy, has_zstd

from roundtrip import PARTITIONS, check, make_records
from support import unique

pytestmark = pytest.mark.pulsar
COUNT = 10_000
CODECS = {None: lambda: True, "gzip": has_gzip, "snappy": has_snappy, "lz4": has_lz4, "zstd": has_zstd}


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        errors = [(t[0], t[1]) for t in resp.topic_errors]
        assert errors == [(topic, 0)], errors
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records, compression: str | None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=compression,
                                linger_ms=5, max_batch_size=64 * 1024, request_timeout_ms=60_000)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=r.key, value=r.value, partition=r.partition,
                                       headers=list(r.headers))
                   for r in records]
        await producer.flush()
        metadata = await asyncio.wait_for(asyncio.gather(*futures), 60)
    finally:
        await producer.stop()
    for r, md in zip(records, metadata):
        assert (md.topic, md.partition) == (topic, r.partition)
        assert md.offset >= 0


async def consume(bootstrap: str, topic: str, count: int) -> dict[int, list[tuple]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    received: dict[int, list[tuple]] = {}
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        n = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while n < count and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for tp, messages in batches.items():
                for m in messages:
                    received.setdefault(tp.partition, []).append(
                        (m.offset, m.key, m.value, [(k, v) for k, v in m.headers]))
                    n += 1
        # Nothing beyond what was sent.
        extra = await consumer.getmany(timeout_ms=500)
        assert not any(extra.values()), f"unexpected extra records: {extra}"
    finally:
        await consumer.stop()
    return received


@pytest.mark.parametrize("compression", list(CODECS))
async def test_round_trip(gateway, compression):
    assert CODECS[compression](), f"aiokafka lacks the {compression} codec library (cramjam)"
    topic = unique("aio")
    records = make_records(COUNT)
    await create_topic(gateway.bootstrap, topic)
    await produce(gateway.bootstrap, topic, records, compression)
    check(await consume(gateway.bootstrap, topic, COUNT), records)


async def test_idempotent_producer(gateway):
    """aiokafka's idempotent producer (InitProducerId, sequence numbers) with lz4 batches."""
    topic = unique("aio-idem")
    records = make_records(2_000, seed=11)
    await create_topic(gateway.bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=gateway.bootstrap, enable_idempotence=True, acks="all",
                                compression_type="lz4", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=r.key, value=r.value, partition=r.partition,
                                       headers=list(r.headers)) for r in records]
        metadata = await asyncio.wait_for(asyncio.gather(*futures), 60)
    finally:
        await producer.stop()
    for p in range(PARTITIONS):
        offs = [md.offset for md, r in zip(metadata, records) if r.partition == p]
        assert offs == sorted(set(offs)), f"partition {p}: offsets not strictly increasing"
    check(await consume(gateway.bootstrap, topic, len(records)), records)
