"""Reading a Pulsar partition as Kafka batches, with readers cached by the offset they stand at.

A consumer fetches sequentially: each Fetch asks for the offset where the previous one ended. kop
keeps the Pulsar reader that served a fetch, keyed by (partition, next offset), so the next fetch
reuses it (and the messages the Pulsar client already prefetched) instead of seeking again.

Reading never blocks the event loop and never loses a message:

- :meth:`PartitionReader.poll` takes what the Pulsar client has already received (``read_next``
  with a zero timeout is a queue pop) and returns at once;
- :meth:`PartitionReader.arrival` gives a future that completes when the next message arrives,
  from any writer (kop, a native Pulsar producer, another gateway); it is never cancelled, so a
  message delivered after a fetch gave up waiting is kept for the next fetch.

Messages are turned into Kafka batches by runs of the same Pulsar entry: a ``kafka``-format entry is
its stored batch with the base offset rewritten in place; a run of ``pulsar``-format messages of one
entry becomes one uncompressed Kafka batch whose offsets are the messages' packed positions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import _pulsar

from ..mapping import offsets
from ..protocol import records as kafka_records
from .convert import ENTRY, ENTRY_BATCH_V2, pulsar_to_record

log = logging.getLogger(__name__)


def message_offset(message: Any) -> int:
    mid = message.message_id()
    return offsets.pack(mid.ledger_id(), mid.entry_id(), max(mid.batch_index(), 0))


def _is_kafka_entry(message: Any) -> bool:
    return message.properties().get(ENTRY) == ENTRY_BATCH_V2


class PartitionReader:
    def __init__(self, reader: _pulsar.Reader, topic_url: str, next_offset: int) -> None:
        self.reader = reader
        self.topic_url = topic_url
        self.next_offset = next_offset  # where the next Kafka fetch is expected to start
        self.busy = False
        self.last_used = time.monotonic()
        self.high_offset = -1  # one past the highest record seen
        self._held: list[Any] = []  # received, not yet returned (a fetch ran out of max_bytes)
        self._arrival: asyncio.Future | None = None
        self.closed = False

    # -- receiving ----------------------------------------------------------------------------

    def arrival(self) -> asyncio.Future:
        """A future done when a message is ready (it may already be)."""
        if self._held:
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        if self._arrival is None:
            loop = asyncio.get_running_loop()
            future = self._arrival = loop.create_future()

            def deliver(result, message) -> None:  # runs on a Pulsar client thread
                loop.call_soon_threadsafe(_settle, future, result, message)
            self.reader.read_next_async(deliver)
        return self._arrival

    def _take(self) -> Any | None:
        if self._held:
            return self._held.pop(0)
        if self._arrival is not None:
            if not self._arrival.done():
                return None
            future, self._arrival = self._arrival, None
            result, message = future.result()
            if result != _pulsar.Result.Ok:
                raise ReadFailed(result)
            return message
        try:
            return self.reader.read_next(0)  # a queue pop: returns or times out at once
        except _pulsar.Timeout:
            return None

    # -- turning messages into Kafka batches ---------------------------------------------------

    def poll(self, fetch_offset: int, max_bytes: int) -> list:
        """Kafka batches starting at ``fetch_offset`` from what has been received, at most about
        ``max_bytes`` (but always the first batch whole, as Kafka does), as chunks of bytes."""
        self.last_used = time.monotonic()
        out: list[bytes] = []
        size = 0
        run: list[Any] = []  # consecutive pulsar-format messages of one entry
        run_entry: tuple[int, int] | None = None
        run_estimate = 0

        def close_run() -> None:
            nonlocal size, run, run_entry, run_estimate
            if run:
                batch = _batch_from_messages(run)
                out.append(batch)
                size += len(batch) - run_estimate
                run, run_entry, run_estimate = [], None, 0

        while size < max_bytes or not out:
            message = self._take()
            if message is None:
                break
            mid = message.message_id()
            ledger, entry_id, index = mid.ledger_id(), mid.entry_id(), mid.batch_index()
            offset = offsets.pack(ledger, entry_id, max(index, 0))
            # A kafka-format entry is never a Pulsar batch: only unbatched messages need the
            # (costly) properties lookup.
            if index < 0 and _is_kafka_entry(message):
                count = int(message.properties().get("__kafka_records", "1"))
                if offset + count - 1 < fetch_offset:
                    continue  # wholly before the fetch offset (a reader positioned mid-entry)
                close_run()
                if out and size + message.length() > max_bytes:
                    self._held.insert(0, message)
                    break
                # The stored batch goes out as it is, behind its base offset: no copy is made.
                data = message.data()
                out.append(offset.to_bytes(8, "big"))
                out.append(memoryview(data)[8:])
                size += len(data)
                self.high_offset = max(self.high_offset, offset + count)
                self.next_offset = offset + count
                continue
            if offset < fetch_offset:
                continue
            entry = (ledger, entry_id)
            if entry != run_entry:
                close_run()
                if out and size >= max_bytes:
                    self._held.insert(0, message)
                    break
                run_entry = entry
            run.append((message, offset))
            estimate = message.length() + 32  # until the batch is built
            run_estimate += estimate
            size += estimate
            self.high_offset = max(self.high_offset, offset + 1)
            self.next_offset = offset + 1
        close_run()
        return out

    def has_held(self) -> bool:
        return bool(self._held) or (self._arrival is not None and self._arrival.done())

    async def close(self) -> None:
        self.closed = True
        loop = asyncio.get_running_loop()
        closed = loop.create_future()
        try:
            self.reader.close_async(lambda result: loop.call_soon_threadsafe(
                lambda: closed.done() or closed.set_result(result)))
            await asyncio.wait_for(closed, 10)
        except Exception as exc:
            log.debug("closing reader on %s: %r", self.topic_url, exc)


class ReadFailed(Exception):
    def __init__(self, result: Any) -> None:
        super().__init__(f"Pulsar read failed: {result}")
        self.result = result


def _settle(future: asyncio.Future, result: Any, message: Any) -> None:
    if not future.done():
        future.set_result((result, message))


def _batch_from_messages(run: list[tuple[Any, int]]) -> bytes:
    """One uncompressed Kafka batch from (message, packed offset) pairs of one Pulsar entry."""
    base = run[0][1]
    recs = [pulsar_to_record(offset - base, message.data(), message.has_null_value(), message.partition_key(),
                             message.event_timestamp(), message.publish_timestamp(), message.properties())
            for message, offset in run]
    return bytes(kafka_records.build_batch(recs, base_offset=base))
