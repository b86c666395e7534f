"""Offsets survive a gateway restart and ledger rollovers, in either offsets.mode; with packed offsets
(Pulsar positions) a fetch at an offset that names no record (a gap) continues at the next record."""

from __future__ import annotations

import asyncio
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from kop.mapping import offsets
from support import ADMIN_URL, CONTIGUOUS, OFFSETS_MODE, SERVICE_URL, admin, unique

PACKED = {"KOP_OFFSETS_MODE": "packed"}

pytestmark = pytest.mark.pulsar


def _produce(bootstrap: str, topic: str, values: list[bytes], one_per_batch: bool = False) -> list[int]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0 if one_per_batch else 5)
    acked = []
    if one_per_batch:
        for v in values:
            acked.append(producer.send(topic, value=v, partition=0).get(30).offset)
    else:
        futures = [producer.send(topic, value=v, partition=0) for v in values]
        producer.flush(60)
        acked = [f.get(30).offset for f in futures]
    producer.close()
    return acked


def _consume(bootstrap: str, topic: str, start: int | None = None, limit: int = 10**6) -> list[tuple[int, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=6000)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    if start is None:
        consumer.seek_to_beginning(tp)
    else:
        consumer.seek(tp, start)
    out = []
    for m in consumer:
        out.append((m.offset, m.value))
        if len(out) >= limit:
            break
    consumer.close()
    return out


def _create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    client = KafkaAdminClient(bootstrap_servers=bootstrap)
    client.create_topics([NewTopic(topic, partitions, 1)])
    client.close()


def _ledgers(topic: str) -> list[int]:
    status, stats = admin(f"persistent/public/default/{topic}-partition-0/internalStats")
    assert status == 200, stats
    return [l["ledgerId"] for l in stats["ledgers"]]


def test_offsets_survive_a_gateway_restart(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    topic = unique("restart")
    _create(gw.bootstrap, topic)
    first = _produce(gw.bootstrap, topic, [b"a%d" % i for i in range(300)])
    assert gw.stop() == 0, "SIGTERM should stop kop cleanly"
    gw2 = gateways("--entry-format", entry_format)
    records = _consume(gw2.bootstrap, topic)
    assert [o for o, _ in records] == first
    assert [v for _, v in records] == [b"a%d" % i for i in range(300)]
    second = _produce(gw2.bootstrap, topic, [b"b%d" % i for i in range(50)])
    assert min(second) > max(first)
    # a consumer resuming at "last acknowledged offset + 1" gets exactly the new records
    assert [v for _, v in _consume(gw2.bootstrap, topic, start=max(first) + 1)] == [b"b%d" % i for i in range(50)]


def test_ledger_rollover(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    topic = unique("rollover")
    _create(gw.bootstrap, topic)
    before = _produce(gw.bootstrap, topic, [b"x%d" % i for i in range(60)], one_per_batch=True)
    status, _ = admin(f"persistent/public/default/{topic}-partition-0/unload", "PUT")
    assert status == 204
    after = _produce(gw.bootstrap, topic, [b"y%d" % i for i in range(60)], one_per_batch=True)
    assert len(_ledgers(topic)) >= 2, "no ledger rollover happened"
    acked = before + after
    assert acked == (list(range(120)) if CONTIGUOUS else sorted(set(acked)))
    everything = _consume(gw.bootstrap, topic)
    assert [o for o, _ in everything] == acked
    assert [v for _, v in everything] == [b"x%d" % i for i in range(60)] + [b"y%d" % i for i in range(60)]


def test_packed_ledger_rollover_and_gaps(gateways, entry_format):
    """Packed offsets (offsets.mode = "packed") have gaps: a fetch in one continues at the next record."""
    gw = gateways("--entry-format", entry_format, env=PACKED)
    topic = unique("rollover")
    _create(gw.bootstrap, topic)
    before = _produce(gw.bootstrap, topic, [b"x%d" % i for i in range(60)], one_per_batch=True)
    # Force a rollover whatever managedLedgerMaxEntriesPerLedger is: unloading the topic closes its
    # ledger; the next write opens a new one. (The test Pulsar also rolls over every 200 entries.)
    status, _ = admin(f"persistent/public/default/{topic}-partition-0/unload", "PUT")
    assert status == 204
    after = _produce(gw.bootstrap, topic, [b"y%d" % i for i in range(60)], one_per_batch=True)
    ledgers = {offsets.unpack(o).ledger_id for o in before + after}
    assert len(ledgers) >= 2 and len(_ledgers(topic)) >= 2, "no ledger rollover happened"
    acked = before + after
    assert acked == sorted(acked) and len(set(acked)) == len(acked)

    everything = _consume(gw.bootstrap, topic)
    assert [o for o, _ in everything] == acked
    assert [v for _, v in everything] == [b"x%d" % i for i in range(60)] + [b"y%d" % i for i in range(60)]

    # Gaps: past the last record of the first ledger, inside an entry that was never written, and
    # past the end of a batch: each fetch continues at the next existing record.
    last_before = before[-1]
    ledger, entry, _ = offsets.unpack(last_before)
    for gap in (last_before + 1, offsets.pack(ledger, entry + 7, 0), offsets.pack(ledger, entry, 5)):
        got = _consume(gw.bootstrap, topic, start=gap, limit=3)
        assert got and got[0] == (after[0], b"y0"), f"fetch at gap {gap} gave {got[:1]}"


def test_list_offsets_earliest_latest_and_by_time(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    topic = unique("listoff")
    _create(gw.bootstrap, topic)
    consumer = KafkaConsumer(bootstrap_servers=gw.bootstrap, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    empty_end = consumer.end_offsets([tp])[tp]
    assert consumer.beginning_offsets([tp])[tp] == empty_end
    early = _produce(gw.bootstrap, topic, [b"early%d" % i for i in range(5)])
    time.sleep(1.5)
    middle = int(time.time() * 1000)
    time.sleep(0.5)
    late = _produce(gw.bootstrap, topic, [b"late%d" % i for i in range(5)])
    assert consumer.beginning_offsets([tp])[tp] == early[0]
    end = consumer.end_offsets([tp])[tp]
    assert end > late[-1] and end >= empty_end, (early, late, end, empty_end)
    found = consumer.offsets_for_times({tp: middle})[tp]
    assert found is not None and found.offset == late[0]
    assert consumer.offsets_for_times({tp: int(time.time() * 1000) + 60_000})[tp] is None
    consumer.close()


async def test_earliest_of_an_empty_partition_is_not_past_a_write_racing_it(pulsar):
    """A consumer resetting to "earliest" on an empty partition while a producer writes its first
    record must still read that record. Reproduced in-process: the record is written right after
    kop's first look at the partition (found empty) and before anything else it asks Pulsar."""
    import pulsar as pulsar_client

    from kop.backend.pulsar import PulsarBackend
    from kop.config import load
    from kop.mapping.topics import partition_topic

    backend = PulsarBackend(load(env={"KOP_OFFSETS_MODE": OFFSETS_MODE, "KOP_PULSAR_ADMIN_URL": ADMIN_URL,
                                      "KOP_PULSAR_SERVICE_URL": SERVICE_URL}))
    await backend.start()
    client = pulsar_client.Client(SERVICE_URL)
    try:
        topic = unique("race-earliest")
        await backend.create_topic(topic, 1)
        url = partition_topic(backend.namespace, topic, 0).url
        producer = client.create_producer(url, batching_enabled=False)
        stats = backend.admin.internal_stats
        written = []

        async def stats_then_write(ptopic):
            answer = await stats(ptopic)
            if not written:  # the first record lands between kop's two questions
                mid = await asyncio.to_thread(producer.send, b"first")
                written.append(0 if CONTIGUOUS else offsets.pack(mid.ledger_id(), mid.entry_id(),
                                                                 max(mid.batch_index(), 0)))
            return answer
        backend.admin.internal_stats = stats_then_write
        earliest = await backend.earliest_offset(topic, 0)
        assert written, "the racing write did not happen"
        assert earliest <= written[0], f"earliest {earliest} is past the record written at {written[0]}"
        backend.admin.internal_stats = stats
        assert await backend.earliest_offset(topic, 0) == written[0]  # and once it is there, exactly it
    finally:
        client.close()
        await backend.close()


async def test_log_end_of_a_batch_written_elsewhere(gateways, entry_format):
    """Another gateway of the fleet (or this one before a restart) wrote the last batch: the log end
    is still one past its last record, in both entry formats (a kafka-format entry is one Pulsar
    message holding the whole batch, so Pulsar's last message id alone does not say how many)."""
    from kop.backend.pulsar import PulsarBackend
    from kop.config import load

    gw = gateways("--entry-format", entry_format)
    topic = unique("end-elsewhere")
    _create(gw.bootstrap, topic)
    acked = await asyncio.to_thread(_produce, gw.bootstrap, topic, [b"r%d" % i for i in range(5)])
    if CONTIGUOUS:
        assert acked == [0, 1, 2, 3, 4]
    else:
        assert len({offsets.unpack(o)[:2] for o in acked}) == 1, f"not one entry: {acked}"
    # a gateway that has seen nothing of this partition
    other = PulsarBackend(load(env={"KOP_OFFSETS_MODE": OFFSETS_MODE, "KOP_PULSAR_ADMIN_URL": ADMIN_URL,
                                    "KOP_PULSAR_SERVICE_URL": SERVICE_URL}))
    await other.start()
    try:
        assert await other.latest_offset(topic, 0) == acked[-1] + 1
        assert await other.earliest_offset(topic, 0) == acked[0]
    finally:
        await other.close()
