"""The open Pulsar readers, by partition and the Kafka offset each stands at (see reader.py).

A reader holds a broker-side cursor and a receive queue of prefetched entries, so the cache is
bounded: ``fetch.max_readers_per_partition`` per partition and ``fetch.max_readers`` in all (least
recently used evicted first), and a reader idle for ``fetch.reader_idle_s`` is closed. A reader lent
to a fetch is *busy*: never lent twice, never evicted.

Choosing what to evict and taking it out of the cache happen with no ``await`` in between, and
closing happens afterwards on tasks the cache keeps. Fetches run concurrently: when eviction awaited
each close before removing the next victim, a second fetch chose the same victims, its ``remove``
failed, and the reader it had just opened stayed busy for ever, never lent, never evicted, holding
its prefetched entries (the fuzzer's memory growth: ~90 KB per Fetch, and an error to the client).
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

from .. import metrics


class ReaderCache:
    """Readers are duck-typed: ``topic_url``, ``next_offset``, ``busy``, ``closed``, ``last_used``
    and ``async close()`` (PartitionReader; fakes in the unit tests)."""

    def __init__(self, per_partition: int, total: int) -> None:
        self.per_partition = per_partition
        self.total = total
        self._by_url: dict[str, list[Any]] = {}
        self._count = 0
        self._closing: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return self._count

    def on(self, url: str) -> list[Any]:
        """The cached readers of one partition (a copy)."""
        return list(self._by_url.get(url, ()))

    @property
    def closing(self) -> int:
        return len(self._closing)

    def lend(self, url: str, offset: int) -> Any | None:
        """An idle cached reader standing at ``offset``, now busy; None if there is none."""
        for reader in self._by_url.get(url, ()):
            if not reader.busy and not reader.closed and reader.next_offset == offset:
                reader.busy = True
                return reader
        return None

    def add(self, reader: Any) -> None:
        """A reader just opened, lent to its fetch (busy); evicts to stay within the caps."""
        reader.busy = True
        self._by_url.setdefault(reader.topic_url, []).append(reader)
        self._count += 1
        metrics.PULSAR_READERS.inc()
        self._trim(reader.topic_url)

    def give_back(self, reader: Any, failed: bool = False) -> None:
        """The fetch is done with ``reader``; a failed one is closed (the next fetch opens another)."""
        reader.busy = False
        if failed:
            self.forget([reader])
        else:
            self._trim(reader.topic_url)  # the caps may have been passed while it was lent

    def _trim(self, url: str) -> None:
        mine = self._by_url.get(url, [])
        excess = len(mine) - self.per_partition
        if excess > 0:
            self.forget(sorted((r for r in mine if not r.busy), key=_last_used)[:excess])
        excess = self._count - self.total
        if excess > 0:
            idle = (r for rs in self._by_url.values() for r in rs if not r.busy)
            self.forget(sorted(idle, key=_last_used)[:excess])

    def forget(self, readers: Iterable[Any]) -> None:
        """Out of the cache now, closed in the background."""
        for reader in list(readers):
            mine = self._by_url.get(reader.topic_url)
            if mine is not None and reader in mine:
                mine.remove(reader)
                self._count -= 1
                metrics.PULSAR_READERS.dec()
                if not mine:
                    del self._by_url[reader.topic_url]
            if reader.closed:  # forgotten before (its partition dropped while it was lent, then failed)
                continue
            reader.closed = True  # lent to nobody from now on, even before its close runs
            task = asyncio.ensure_future(reader.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def forget_idle(self, cutoff: float) -> int:
        """Closes the readers not lent and unused since ``cutoff`` (monotonic seconds)."""
        stale = [r for rs in self._by_url.values() for r in rs if not r.busy and r.last_used < cutoff]
        self.forget(stale)
        return len(stale)

    def forget_partition(self, url: str) -> None:
        """Every reader of a partition that is gone, lent or not (a lent one fails its next read)."""
        self.forget(self.on(url))

    async def close(self) -> None:
        self.forget([r for rs in self._by_url.values() for r in rs])
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _last_used(reader: Any) -> float:
    return reader.last_used
