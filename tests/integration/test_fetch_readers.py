"""Many consumers fetching one partition from its start at once: each fetch opens a Pulsar reader
(the cached ones have moved on), and the reader cache must stay within its cap without failing a
fetch. Before kop/backend/reader_cache.py, a concurrent eviction raised inside another fetch, that
fetch got UNKNOWN_SERVER_ERROR and its reader stayed marked busy for ever: readers piled up with
their prefetched entries (the fuzzer's memory growth)."""

from __future__ import annotations

import asyncio
import struct
import urllib.request

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.consumer import FetchRequest, FetchResponse
from kafka.record import MemoryRecords
from prometheus_client.parser import text_string_to_metric_families

from support import unique

pytestmark = pytest.mark.pulsar

FETCHERS, ROUNDS = 16, 25


def _fetch_frame(topic: str, correlation_id: int) -> bytes:
    F = FetchRequest
    request = F(replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=1 << 20, isolation_level=0, session_id=0,
                session_epoch=-1, topics=[F.FetchTopic(topic=topic, partitions=[F.FetchTopic.FetchPartition(
                    partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1, log_start_offset=-1,
                    partition_max_bytes=4096)])], forgotten_topics_data=[], rack_id="")
    request.with_header(correlation_id=correlation_id, client_id="reader-cache-test")
    return bytes(request.encode(version=12, header=True, framed=True))


async def _fetcher(port: int, topic: str, outcomes: list) -> None:
    for i in range(ROUNDS):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(_fetch_frame(topic, i))
            (size,) = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), 30))
            frame = await reader.readexactly(size)
        finally:
            writer.close()
        [part] = FetchResponse.decode(frame, version=12, header=True).responses[0].partitions
        first = None
        if part.records:
            records = MemoryRecords(bytes(part.records))
            first = next(iter(records.next_batch())).value
        outcomes.append((part.error_code, first))


def _readers_open(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=15) as resp:
        text = resp.read().decode()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "kop_pulsar_readers")


def test_concurrent_fetches_from_the_start_all_succeed_and_readers_stay_capped(gateways):
    gw = gateways("--entry-format", "pulsar")
    topic = unique("readers")
    creator = AdminClient({"bootstrap.servers": gw.bootstrap})  # alive until the result is in
    creator.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": gw.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(300):
        producer.produce(topic, value=b"r%03d" % i + b"." * 100)
    assert producer.flush(30) == 0

    outcomes: list = []

    async def run() -> None:
        await asyncio.gather(*(_fetcher(gw.port, topic, outcomes) for _ in range(FETCHERS)))
    asyncio.run(run())

    assert len(outcomes) == FETCHERS * ROUNDS
    errors = [code for code, _ in outcomes if code != 0]
    assert not errors, f"{len(errors)} fetches failed, error codes {sorted(set(errors))}"
    assert {first for _, first in outcomes} == {b"r000" + b"." * 100}  # every fetch read from the start
    # fetch.max_readers_per_partition (8); before the fix, hundreds stayed open, busy for ever.
    assert _readers_open(gw.metrics_port) <= 8
