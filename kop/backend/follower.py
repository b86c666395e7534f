"""Following a keyed state topic: read it from its start and keep reading, every record applied in
order; :meth:`Follower.synced` waits until every record written before the call has been applied.

What every gateway needs of ``__transactions`` (kop/txn/view.py): its own copy of every
coordinator's state, kept current, and a way to be sure it is current when that matters (the
barrier costs one GET_LAST_MESSAGE_ID and the wait for the records in flight).

The reader reads the topic's compacted view (the latest record of each key) and then every record
written after it, as Pulsar delivers compacted readers. A reader that fails for good (its topic
deleted and recreated, a broker that keeps refusing it) is replaced by a new one from the position
after the last record applied; records are keyed states, so one applied twice does no harm.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from .exclusive_log import COMPACTED_IDLE_S
from .wire.client import WireClient
from .wire.entries import EntryError, split
from .wire.errors import WireError
from .wire.reader import EARLIEST, WireReader

log = logging.getLogger(__name__)

Apply = Callable[[str, "bytes | None"], None]  # (key, value or None for a tombstone)
RESTART_BACKOFF_S = 1.0


class Follower:
    def __init__(self, wire: WireClient, url: str, apply: Apply, receiver_queue: int = 1000) -> None:
        self.wire = wire
        self.url = url
        self.apply = apply
        self.receiver_queue = receiver_queue
        self.position: tuple[int, int] = (-1, -1)   # the last entry applied
        self.reader: WireReader | None = None
        self._task: asyncio.Task | None = None
        self._advanced: asyncio.Future | None = None
        self._closed = False

    async def start(self) -> None:
        self.reader = await WireReader(self.wire, self.url, EARLIEST, self.receiver_queue, read_compacted=True).start()
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        if self.reader is not None:
            await self.reader.close()

    async def synced(self, timeout_s: float = 30.0) -> None:
        """Returns once every record written before the call has been applied (raises WireError or
        asyncio.TimeoutError)."""
        await asyncio.wait_for(self._synced(), timeout_s)

    async def _synced(self) -> None:
        reader = self.reader
        while reader is None or reader.connection is None:
            await asyncio.sleep(0.05)
            reader = self.reader
        last = await reader.last_message_id()
        while last[1] >= 0 and self.position < last:
            try:
                await asyncio.wait_for(asyncio.shield(self._advance_future()), COMPACTED_IDLE_S)
            except asyncio.TimeoutError:
                # Nothing arrived although the end lies ahead: at the start of a compacted read the
                # last entry may have been compacted away (a tombstone). Ask again.
                again = await self.reader.last_message_id() if self.reader is not None else last
                if again == last and (self.reader is None or not self.reader.queued):
                    return
                last = again

    def _advance_future(self) -> asyncio.Future:
        if self._advanced is None or self._advanced.done():
            self._advanced = asyncio.get_running_loop().create_future()
        return self._advanced

    async def _run(self) -> None:
        while not self._closed:
            reader = self.reader
            try:
                entry = reader.take()
            except WireError as exc:
                log.warning("following %s: %s; reading again from %s", self.url, exc, self.position)
                await asyncio.sleep(RESTART_BACKOFF_S)
                await self._restart()
                continue
            if entry is None:
                await reader.arrival()
                continue
            self.position = (entry.ledger_id, entry.entry_id)
            try:
                singles = split(entry.metadata, entry.payload)
            except EntryError as exc:
                log.warning("%s: entry %d:%d cannot be read (%s); skipped", self.url, *self.position, exc)
                singles = []
            for single in singles:
                key = single.metadata.get("partition_key", "")
                value = None if single.metadata.get("null_value") or not single.payload else single.payload
                try:
                    self.apply(key, value)
                except Exception:  # one bad record must not stop the others
                    log.exception("%s: applying record %r", self.url, key)
            if self._advanced is not None and not self._advanced.done():
                self._advanced.set_result(None)

    async def _restart(self) -> None:
        old = self.reader
        start = (self.position[0], self.position[1] + 1) if self.position[0] >= 0 else EARLIEST
        try:
            self.reader = await WireReader(self.wire, self.url, start, self.receiver_queue,
                                           read_compacted=True).start()
        except WireError as exc:
            log.warning("following %s: cannot read again yet: %s", self.url, exc)
            return
        if old is not None:
            asyncio.ensure_future(old.close())
