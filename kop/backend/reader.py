"""Reading a Pulsar partition as Kafka batches, with readers cached by the offset they stand at.

A consumer fetches sequentially: each Fetch asks for the offset where the previous one ended. kop
keeps the Pulsar reader that served a fetch, keyed by (partition, next offset), so the next fetch
reuses it (and the messages the Pulsar client already prefetched) instead of seeking again.

Reading never blocks the event loop and never loses a message:

- :meth:`PartitionReader.poll` takes what the Pulsar client has already received (at most
  ``fetch.reader_prefetch`` entries, its receiver queue) and returns at once;
- :meth:`PartitionReader.arrival` gives a future that completes when a message is there, from any
  writer (kop, a native Pulsar producer, another gateway); a message delivered after a fetch gave
  up waiting stays queued for the next fetch.

Messages are turned into Kafka batches by runs of the same Pulsar entry: a ``kafka``-format entry is
its stored batch with the base offset rewritten in place; a run of ``pulsar``-format messages of one
entry becomes one uncompressed Kafka batch whose offsets are the messages' packed positions. An
entry that repeats an idempotent batch the reader has passed goes out empty (resends.py); a new
reader starts a few entries early to have passed them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import Any

import _pulsar

from .. import metrics
from ..mapping import offsets
from ..protocol import records as kafka_records
from .convert import ENTRY, ENTRY_BATCH_V2, PRODUCER, RECORDS, pulsar_to_record
from .resends import SeenBatches, parse_producer_tag, records_of

log = logging.getLogger(__name__)


def message_offset(message: Any) -> int:
    mid = message.message_id()
    return offsets.pack(mid.ledger_id(), mid.entry_id(), max(mid.batch_index(), 0))


class PartitionReader:
    """One Pulsar reader and the Kafka fetch position it stands at."""

    def __init__(self, reader: _pulsar.Reader, topic_url: str, next_offset: int) -> None:
        self.reader = reader
        self.topic_url = topic_url
        self.next_offset = next_offset  # where the next Kafka fetch is expected to start
        self.busy = False
        self.last_used = time.monotonic()
        self.high_offset = -1  # one past the highest record seen
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._queue: collections.deque[Any] = collections.deque()  # delivered or put back, not yet returned
        self._lock = threading.Lock()  # guards _armed and _waiter against the client's thread
        self._armed = False  # a read_next_async is outstanding
        self._waiter: asyncio.Future | None = None
        self._failure: Any = None
        self.last_poll_records = 0  # records in what the last poll() returned (metrics)
        self.seen = SeenBatches()  # idempotent batches passed, to step over a resent one (resends.py)
        self._resent_entry: tuple[int, int] | None = None  # the pulsar-format entry being stepped over

    # -- receiving ----------------------------------------------------------------------------
    # While messages flow, they are popped from the Pulsar client's queue directly (read_next with
    # a zero timeout; no callback, no thread hop). Once that queue is empty, one read_next_async
    # is left outstanding and no further read_next is tried until it delivers: a read_next(0) on an
    # empty queue costs ~100 us (a C++ timeout turned into a Python exception), and a fetch over many
    # quiet partitions used to pay that for each of them, every time.

    def _arm(self) -> None:
        with self._lock:
            if self._armed or self.closed or self._failure is not None:
                return
            self._armed = True
        self.reader.read_next_async(self._deliver)

    def _deliver(self, result: Any, message: Any) -> None:  # on a Pulsar client thread
        with self._lock:
            self._armed = False
            if result == _pulsar.Result.Ok:
                self._queue.append(message)
            elif not self.closed:
                self._failure = result
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)

    def arrival(self) -> asyncio.Future:
        """A future done when a message is ready (it may already be)."""
        with self._lock:
            ready = bool(self._queue) or self._failure is not None
            if not ready:
                if self._waiter is None or self._waiter.done():
                    self._waiter = self._loop.create_future()
                waiter = self._waiter
        if ready:
            waiter = self._loop.create_future()
            waiter.set_result(None)
        else:
            self._arm()
        return waiter

    def _take(self) -> Any | None:
        if self._queue:
            return self._queue.popleft()
        if self._failure is not None:
            raise ReadFailed(self._failure)
        if self._armed:
            return None  # the outstanding read_next_async gets the next message, in order
        try:
            return self.reader.read_next(0)
        except _pulsar.Timeout:
            self._arm()
            return None

    def _put_back(self, message: Any) -> None:
        """A message taken but not returned (the fetch ran out of bytes): it goes first next time."""
        self._queue.appendleft(message)

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
        records = 0

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
            props = message.properties() if index < 0 else None
            if props is not None and props.get(ENTRY) == ENTRY_BATCH_V2:
                count = int(props.get(RECORDS, "1"))
                if offset + count - 1 < fetch_offset:
                    self.seen.is_resend(props.get(PRODUCER))  # passed: remembered (see resends.py)
                    continue  # wholly before the fetch offset (a reader positioned mid-entry)
                close_run()
                if out and size + message.length() > max_bytes:
                    self._put_back(message)
                    break
                data = message.data()
                if self.seen.is_resend(props.get(PRODUCER)):
                    out.append(kafka_records.emptied(data, offset))
                    size += kafka_records.BATCH_HEADER_SIZE
                    metrics.RESENDS_SKIPPED.inc()
                else:
                    records += count
                    # The stored batch goes out as it is, behind its base offset: no copy is made.
                    out.append(offset.to_bytes(8, "big"))
                    out.append(memoryview(data)[8:])
                    size += len(data)
                self.high_offset = max(self.high_offset, offset + count)
                self.next_offset = offset + count
                continue
            entry = (ledger, entry_id)
            if index <= 0 and entry != self._resent_entry:
                # The first message of a pulsar-format entry carries the batch's identity.
                props = message.properties() if props is None else props
                tag = props.get(PRODUCER)
                if tag is not None and offset < fetch_offset:
                    self.seen.is_resend(tag)
                elif tag is not None:
                    close_run()
                    if out and size >= max_bytes:
                        self._put_back(message)
                        break
                    if self.seen.is_resend(tag):
                        self._resent_entry = entry
                        first, last = parse_producer_tag(tag)[2:]
                        count = records_of(first, last)
                        out.append(kafka_records.empty_batch(offset, count - 1, base_timestamp=message.publish_timestamp(),
                                                             max_timestamp=message.publish_timestamp()))
                        size += kafka_records.BATCH_HEADER_SIZE
                        metrics.RESENDS_SKIPPED.inc()
                        self.high_offset = max(self.high_offset, offset + count)
                        self.next_offset = offset + count
            if entry == self._resent_entry:
                continue  # a message of a resent entry, covered by the empty batch sent for it
            if offset < fetch_offset:
                continue
            if entry != run_entry:
                close_run()
                if out and size >= max_bytes:
                    self._put_back(message)
                    break
                run_entry = entry
            run.append((message, offset))
            records += 1
            estimate = message.length() + 32  # until the batch is built
            run_estimate += estimate
            size += estimate
            self.high_offset = max(self.high_offset, offset + 1)
            self.next_offset = offset + 1
        close_run()
        self.last_poll_records = records
        return out

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


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _batch_from_messages(run: list[tuple[Any, int]]) -> bytes:
    """One uncompressed Kafka batch from (message, packed offset) pairs of one Pulsar entry."""
    base = run[0][1]
    recs = [pulsar_to_record(offset - base, message.data(), message.has_null_value(), message.partition_key(),
                             message.event_timestamp(), message.publish_timestamp(), message.properties())
            for message, offset in run]
    return bytes(kafka_records.build_batch(recs, base_offset=base))
