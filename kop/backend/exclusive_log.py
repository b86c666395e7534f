"""A Pulsar topic that one gateway writes at a time, and reading a topic to its end: what kop's own
state topics need (``__offsets`` for the group coordinator, later ``__transactions``).

:class:`ExclusiveLog` holds a producer in Pulsar's **Exclusive** access mode: while it is open no
other gateway can open one (Pulsar answers ProducerFenced or ProducerBusy), so Pulsar, not a
protocol of kop's, decides who writes. Records are keyed (the Pulsar partition key, which topic
compaction keeps the latest of); a ``None`` value is a tombstone (Pulsar's null-value flag, an empty
payload and ``uncompressed_size`` 0, which the broker's compactor drops). A holder whose connection
dropped and that finds another holder when it reconnects is fenced for good: its pending and later
appends fail and :attr:`ExclusiveLog.lost` says so.

:func:`read_to_end` reads a topic from a position (compacted or not) up to the last entry Pulsar
reports at the start: every append acknowledged before the call is in what it yields.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

from .wire import commands as cmd
from .wire.client import WireClient
from .wire.entries import EntryError, Single, split
from .wire.errors import WireError
from .wire.producer import WireProducer
from .wire.reader import EARLIEST, WireReader

log = logging.getLogger(__name__)

# Appends awaiting a receipt; beyond it, room() waits. A bound on memory, not a tuning knob.
MAX_IN_FLIGHT = 1000
# With a compacted reader, the last entry Pulsar reports may have been compacted away (a tombstone):
# once nothing has arrived for this long, the end is asked again and, unchanged, taken as reached.
COMPACTED_IDLE_S = 2.0


class ExclusiveLog:
    def __init__(self, wire: WireClient, url: str, producer_name: str = "", send_timeout_s: float = 30.0) -> None:
        self.wire = wire
        self.url = url
        self.producer_name = producer_name
        self.send_timeout_s = send_timeout_s
        self.producer: WireProducer | None = None
        self.pending = 0
        self._waiters: list[asyncio.Future] = []

    @property
    def held(self) -> bool:
        return self.producer is not None and self.producer.failed is None and not self.producer.closed

    @property
    def lost(self) -> bool:
        """Held once, and fenced (or failed) since: appends fail until acquired again."""
        return self.producer is not None and (self.producer.failed is not None or self.producer.closed)

    async def acquire(self) -> bool:
        """True once this gateway holds the topic; False when another one does. Raises WireError when
        Pulsar fails otherwise."""
        if self.held:
            return True
        producer = WireProducer(self.wire, self.url, name=self.producer_name or None, access_mode=cmd.EXCLUSIVE,
                                send_timeout_s=self.send_timeout_s)
        try:
            await producer.start()
        except WireError as exc:
            if exc.name in ("ProducerFenced", "ProducerBusy"):
                return False
            raise
        self.producer = producer
        return True

    async def release(self) -> None:
        """Let go once every append is confirmed (another gateway may acquire it from then on)."""
        producer, self.producer = self.producer, None
        if producer is not None:
            await producer.close()

    def append(self, key: str, value: bytes | None) -> asyncio.Future:
        """Write one record now (call order is write order); the future completes on its receipt."""
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        if self.producer is None:
            future.set_exception(WireError("NotConnected", f"{self.url} is not held"))
            return future
        fields: dict = {"partition_key": key, "uncompressed_size": 0 if value is None else len(value)}
        if value is None:
            fields["null_value"] = True
        self.pending += 1

        def done(result) -> None:
            self.pending -= 1
            self._wake()
            if not future.done():
                future.set_exception(result) if isinstance(result, WireError) else future.set_result(result)
        self.producer.write(cmd.MessageMetadata.encode(fields), value or b"", 1, done)
        return future

    async def room(self, count: int) -> None:
        """Until ``count`` more appends fit (at once when nothing is pending)."""
        await self._until(lambda: not self.pending or self.pending + count <= MAX_IN_FLIGHT)

    async def drained(self) -> None:
        await self._until(lambda: not self.pending)

    async def _until(self, ready) -> None:
        while not ready():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


async def read_to_end(wire: WireClient, url: str, start: tuple[int, int] = EARLIEST, read_compacted: bool = False,
                      timeout_s: float = 30.0, receiver_queue: int = 1000) -> AsyncIterator[tuple[int, int, Single]]:
    """(ledger id, entry id, message) of every message from ``start`` to the end Pulsar reports now,
    in order; entries that cannot be parsed are skipped with a warning."""
    reader = await WireReader(wire, url, start, receiver_queue, read_compacted=read_compacted).start()
    try:
        last = await reader.last_message_id()
        position = (-1, -1)
        while position < last and last[1] >= 0:
            entry = reader.take()
            if entry is None:
                wait_s = COMPACTED_IDLE_S if read_compacted else timeout_s
                try:
                    await asyncio.wait_for(asyncio.shield(reader.arrival()), wait_s)
                except asyncio.TimeoutError:
                    if not read_compacted:
                        raise WireError("Timeout", f"{url}: nothing read within {timeout_s:.0f} s although "
                                                   f"Pulsar reported entries up to {last}") from None
                    again = await reader.last_message_id()
                    if again == last:
                        break  # the last entry was compacted away
                    last = again
                continue
            position = (entry.ledger_id, entry.entry_id)
            try:
                singles = split(entry.metadata, entry.payload)
            except EntryError as exc:
                log.warning("%s: entry %d:%d cannot be read (%s); skipped", url, *position, exc)
                continue
            for single in singles:
                yield entry.ledger_id, entry.entry_id, single
    finally:
        await reader.close()


def _retrieve(future: asyncio.Future) -> None:
    """Mark an append's failure as seen: its caller may have been cancelled."""
    if not future.cancelled():
        future.exception()
