"""Many consumers fetching one partition from its start at once: each fetch opens a Pulsar reader
(the cached ones have moved on), and the reader cache must stay within its cap without failing a
fetch. Before kop/backend/reader_cache.py, a concurrent eviction raised inside another fetch, that
fetch got an error (6, NOT_LEADER_OR_FOLLOWER) and its reader stayed marked busy for ever: readers piled up with
their prefetched entries (the fuzzer's memory growth)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from support import metric_samples, raw_fetch, unique, values_of

pytestmark = pytest.mark.pulsar

FETCHERS, ROUNDS = 16, 25


def _first_value_from_start(bootstrap: str, topic: str) -> bytes | None:
    """The first value a Fetch at offset 0 returns, on a fresh connection (raw_fetch fails on an error code)."""
    _, part = raw_fetch(bootstrap, topic, 0, max_wait_ms=100, min_bytes=1, max_bytes=4096)
    return next(iter(values_of(part.records)), None)


def test_concurrent_fetches_from_the_start_all_succeed_and_readers_stay_capped(gateways):
    gw = gateways("--entry-format", "pulsar")
    topic = unique("readers")
    creator = AdminClient({"bootstrap.servers": gw.bootstrap})  # alive until the result is in
    creator.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": gw.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(300):
        producer.produce(topic, value=b"r%03d" % i + b"." * 100)
    assert producer.flush(30) == 0

    with ThreadPoolExecutor(FETCHERS) as pool:
        firsts = list(pool.map(lambda _: _first_value_from_start(gw.bootstrap, topic), range(FETCHERS * ROUNDS)))

    assert len(firsts) == FETCHERS * ROUNDS
    assert set(firsts) == {b"r000" + b"." * 100}  # every fetch succeeded and read from the start
    # fetch.max_readers_per_partition (8); before the fix, hundreds stayed open, busy for ever.
    readers = metric_samples(gw.metrics_port).get(("kop_pulsar_readers", ()))
    assert readers is not None and readers <= 8, readers
