"""The reader cache (kop/backend/reader_cache.py): lending, the caps, eviction while closes are slow."""

from __future__ import annotations

import asyncio
import itertools

from kop.backend.reader_cache import ReaderCache

_clock = itertools.count()


class FakeReader:
    """A PartitionReader's cache-facing surface; its close takes as long as the test wants."""

    def __init__(self, url: str, offset: int, gate: asyncio.Event | None = None) -> None:
        self.topic_url, self.next_offset = url, offset
        self.busy = self.closed = False
        self.last_used = next(_clock)
        self.gate = gate
        self.close_calls = 0

    async def close(self) -> None:
        self.close_calls += 1
        self.closed = True
        if self.gate is not None:
            await self.gate.wait()


def _run(coro):
    return asyncio.run(coro)


def test_an_idle_reader_at_the_offset_is_lent_once():
    async def go():
        cache = ReaderCache(per_partition=4, total=10)
        reader = FakeReader("p0", 100)
        cache.add(reader)
        assert reader.busy and cache.lend("p0", 100) is None  # lent to its own fetch
        cache.give_back(reader)
        assert cache.lend("p0", 99) is None and cache.lend("p1", 100) is None
        assert cache.lend("p0", 100) is reader and reader.busy
        assert cache.lend("p0", 100) is None
    _run(go())


def test_the_per_partition_cap_evicts_the_least_recently_used_idle_reader():
    async def go():
        cache = ReaderCache(per_partition=2, total=10)
        first, second, third = (FakeReader("p0", o) for o in (1, 2, 3))
        for reader in (first, second):
            cache.add(reader)
            cache.give_back(reader)
        cache.add(third)
        await asyncio.sleep(0)
        assert cache.on("p0") == [second, third] and len(cache) == 2
        assert first.close_calls == 1 and second.close_calls == 0
    _run(go())


def test_a_busy_reader_is_never_evicted():
    async def go():
        cache = ReaderCache(per_partition=1, total=10)
        lent = FakeReader("p0", 1)
        cache.add(lent)
        other = FakeReader("p0", 2)
        cache.add(other)  # both lent: the cap is exceeded until one comes back
        assert len(cache) == 2 and not lent.close_calls
        cache.give_back(lent)
        cache.add(FakeReader("p0", 3))
        await asyncio.sleep(0)
        assert lent.close_calls == 1 and other.close_calls == 0 and len(cache) == 2
    _run(go())


def test_eviction_during_slow_closes_leaves_no_reader_busy_for_ever():
    """The bug the fuzzer found: fetches opening readers while earlier evictions were still closing.
    Each added reader must stay lendable once given back, and the cache must stay within its cap."""
    async def go():
        gate = asyncio.Event()  # no close completes until the end
        cache = ReaderCache(per_partition=3, total=100)

        async def fetch(offset: int) -> None:
            reader = cache.lend("p0", offset)
            if reader is None:
                await asyncio.sleep(0)  # opening a reader takes a while: others run meanwhile
                reader = FakeReader("p0", offset, gate)
                cache.add(reader)
            await asyncio.sleep(0)
            cache.give_back(reader)

        for _ in range(20):
            await asyncio.gather(*(fetch(0) for _ in range(8)))
        readers = cache.on("p0")
        assert not any(r.busy for r in readers)
        assert len(readers) == len(cache) <= 3
        assert cache.closing > 0  # evicted ones were still closing the whole time
        gate.set()
        await cache.close()
        assert len(cache) == 0 and cache.closing == 0
        assert all(r.close_calls == 1 for r in readers)
    _run(go())


def test_the_total_cap_evicts_across_partitions():
    async def go():
        cache = ReaderCache(per_partition=5, total=3)
        old = [FakeReader(f"p{i}", 0) for i in range(3)]
        for reader in old:
            cache.add(reader)
            cache.give_back(reader)
        cache.add(FakeReader("p9", 0))
        await asyncio.sleep(0)
        assert len(cache) == 3 and old[0].close_calls == 1 and cache.on("p0") == []
    _run(go())


def test_idle_readers_are_closed_and_failed_ones_at_once():
    async def go():
        cache = ReaderCache(per_partition=5, total=10)
        stale, fresh, broken = FakeReader("p0", 1), FakeReader("p0", 2), FakeReader("p1", 1)
        for reader in (stale, fresh, broken):
            cache.add(reader)
        cache.give_back(stale)
        cache.give_back(broken, failed=True)
        assert cache.on("p1") == []
        stale.last_used, fresh.last_used = 10, 5  # fresh is older but lent: kept
        assert cache.forget_idle(cutoff=20) == 1
        await asyncio.sleep(0)
        assert cache.on("p0") == [fresh] and stale.close_calls == broken.close_calls == 1
        cache.forget_partition("p0")
        await asyncio.sleep(0)
        assert len(cache) == 0 and fresh.close_calls == 1
    _run(go())
