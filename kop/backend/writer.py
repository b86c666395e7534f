"""Appending Kafka batches to one Pulsar partition, one Kafka batch per Pulsar entry.

``pulsar`` format: the batch's records are sent as individual messages through a *batching*
Pulsar producer whose timer never fires (``batching_max_publish_delay_ms`` of an hour) and whose
size limits exceed what kop accepts, then flushed. All sends and the flush happen in one event-loop
step, so the records of one Kafka batch become exactly one Pulsar batch entry with batch indexes
0..n-1, and batches of concurrent requests can neither interleave nor reorder.

``kafka`` format: the batch bytes are one message of a non-batching producer.

Either way the Pulsar receipt (ledger, entry, batch index) of the first record packs into the Kafka
base offset. Per-partition order is the order of :meth:`PartitionWriter.append` calls.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass

import _pulsar

from ..mapping import offsets
from ..protocol.records import Record
from .convert import PRODUCER, PulsarFields, kafka_entry_properties, record_to_pulsar

log = logging.getLogger(__name__)

# In-flight records per partition before a new batch waits; a bound on memory, not a tuning knob.
MAX_PENDING_RECORDS = 4 * offsets.MAX_BATCH_SIZE
MAX_PENDING_BYTES = 32 * 1024 * 1024
# Larger than anything kop accepts in one batch (Pulsar's maxMessageSize is 5 MiB).
BATCH_BYTES_LIMIT = 8 * 1024 * 1024


class WriteFailed(Exception):
    def __init__(self, result: _pulsar.Result, detail: str = "") -> None:
        super().__init__(f"Pulsar refused the write: {result}{' ' + detail if detail else ''}")
        self.result = result


@dataclass(slots=True)
class Appended:
    base_offset: int
    ledger_id: int
    entry_id: int
    records: int


def producer_options(entry_format: str) -> dict:
    if entry_format == "kafka":
        return dict(batching_enabled=False, max_pending_messages=MAX_PENDING_RECORDS,
                    block_if_queue_full=False)
    return dict(batching_enabled=True, batching_max_messages=offsets.MAX_BATCH_SIZE,
                batching_max_allowed_size_in_bytes=BATCH_BYTES_LIMIT,
                batching_max_publish_delay_ms=3_600_000, max_pending_messages=MAX_PENDING_RECORDS,
                block_if_queue_full=False)


def _message(fields: PulsarFields) -> _pulsar.Message:
    builder = _pulsar.MessageBuilder()
    builder.content(fields.payload)
    if fields.null_value:
        builder.set_null_value()
    if fields.partition_key is not None:
        builder.partition_key(fields.partition_key)
    if fields.event_timestamp:
        builder.event_timestamp(fields.event_timestamp)
    if fields.properties:
        builder.properties(fields.properties)
    return builder.build()


class _Completion:
    """Counts the Pulsar receipts of one batch into one future, whose result is the Appended.

    The receipts arrive on the Pulsar client's thread, one per message and in send order; they are
    counted there, and only the last one wakes the event loop (one ``call_soon_threadsafe`` per
    batch, not per record: the per-record wake-up was the largest cost of the ``pulsar`` format).
    The future is completed right there on the loop, with no task of its own to schedule.
    """
    __slots__ = ("future", "loop", "remaining", "first", "last", "error", "writer", "records")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int, writer: "PartitionWriter", records: int) -> None:
        self.loop = loop
        self.future = loop.create_future()
        self.remaining = count
        self.first = None
        self.last = None
        self.error: _pulsar.Result | None = None
        self.writer = writer
        self.records = records

    def receipt(self, result: _pulsar.Result, message_id) -> None:  # on a Pulsar client thread
        if result != _pulsar.Result.Ok:
            self.error = self.error or result
        else:
            if self.first is None:
                self.first = message_id
            self.last = message_id
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.writer.failed = True
            self.future.set_exception(WriteFailed(self.error))
            return
        first, last = self.first, self.last
        if (first.ledger_id(), first.entry_id()) != (last.ledger_id(), last.entry_id()):
            # Cannot happen with the producer options above; if it did, offsets of the later
            # records would be wrong, so say so loudly rather than answer quietly.
            log.error("batch of %d records on %s split across entries %s:%s and %s:%s", self.records,
                      self.writer.topic_url, first.ledger_id(), first.entry_id(), last.ledger_id(), last.entry_id())
        base = offsets.pack(first.ledger_id(), first.entry_id(), max(first.batch_index(), 0))
        self.future.set_result(Appended(base, first.ledger_id(), first.entry_id(), self.records))


class OrderGate:
    """First come, first written: tickets are taken synchronously when a request arrives, so a later
    request whose producer happens to be ready sooner still waits for an earlier one's turn.

    Usage: ``t = gate.take()``, then ``try: await gate.turn(t); <enqueue> finally: gate.release(t)``.
    A ticket released before its turn (its request failed or was cancelled) is skipped.
    """
    __slots__ = ("_next_ticket", "_serving", "_waiters", "_abandoned")

    def __init__(self) -> None:
        self._next_ticket = 0
        self._serving = 0
        self._waiters: dict[int, asyncio.Future] = {}
        self._abandoned: set[int] = set()

    @property
    def idle(self) -> bool:
        """No ticket outstanding: every one taken has been served or released."""
        return self._serving == self._next_ticket and not self._waiters

    def take(self) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        return ticket

    async def turn(self, ticket: int) -> None:
        if ticket != self._serving:
            waiter = self._waiters[ticket] = asyncio.get_running_loop().create_future()
            await waiter

    def release(self, ticket: int) -> None:
        if ticket != self._serving:
            self._abandoned.add(ticket)
            self._waiters.pop(ticket, None)
            return
        self._serving += 1
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        waiter = self._waiters.pop(self._serving, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class PartitionWriter:
    """One Pulsar producer on one partition topic, with bounded in-flight data."""

    def __init__(self, producer: _pulsar.Producer, entry_format: str, topic_url: str) -> None:
        self.producer = producer
        self.entry_format = entry_format
        self.topic_url = topic_url
        self.failed = False
        self._pending_records = 0
        self._pending_bytes = 0
        self._room_waiters: collections.deque[asyncio.Future] = collections.deque()

    def _has_room(self, records: int, size: int) -> bool:
        return self._pending_records == 0 or (self._pending_records + records <= MAX_PENDING_RECORDS
                                              and self._pending_bytes + size <= MAX_PENDING_BYTES)

    async def _wait_for_room(self, records: int, size: int) -> None:
        # First come, first served: a batch that fits does not overtake one already waiting.
        if not self._room_waiters and self._has_room(records, size):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._room_waiters.append(waiter)
        try:
            while True:
                await waiter  # set only while it is first in line (_wake_next)
                if self._has_room(records, size):
                    return
                waiter = self._room_waiters[0] = asyncio.get_running_loop().create_future()  # still first
        finally:
            if self._room_waiters and self._room_waiters[0] is waiter:
                self._room_waiters.popleft()
            elif waiter in self._room_waiters:
                self._room_waiters.remove(waiter)
            self._wake_next()

    def _release(self, records: int, size: int) -> None:
        self._pending_records -= records
        self._pending_bytes -= size
        self._wake_next()

    def _wake_next(self) -> None:
        if self._room_waiters and not self._room_waiters[0].done():
            self._room_waiters[0].set_result(None)

    def start_pulsar(self, records: list[Record], producer: str | None = None) -> asyncio.Future:
        """Enqueue one Kafka batch's records as one Pulsar batch entry (synchronously)."""
        done = _Completion(asyncio.get_running_loop(), len(records), self, len(records))
        send, receipt, builder = self.producer.send_async, done.receipt, _pulsar.MessageBuilder
        for i, record in enumerate(records):
            if i == 0 and producer is not None:  # the batch's identity, on its first message
                fields = record_to_pulsar(record)
                fields.properties[PRODUCER] = producer
                send(_message(fields), receipt)
            elif record.timestamp > 0 and record.key is None and record.value is not None and not record.headers:
                # The common record needs no conversion (convert.record_to_pulsar gives the same).
                send(builder().content(record.value).event_timestamp(record.timestamp).build(), receipt)
            else:
                send(_message(record_to_pulsar(record)), receipt)
        self.producer.flush_async(lambda _result: None)
        return done.future

    def start_kafka(self, batch: bytes, records_count: int, max_timestamp: int,
                    producer: str | None = None) -> asyncio.Future:
        done = _Completion(asyncio.get_running_loop(), 1, self, records_count)
        builder = _pulsar.MessageBuilder()
        builder.content(batch)
        properties = kafka_entry_properties(records_count)
        if producer is not None:
            properties[PRODUCER] = producer
        builder.properties(properties)
        if max_timestamp > 0:
            builder.event_timestamp(max_timestamp)
        self.producer.send_async(builder.build(), done.receipt)
        return done.future

    async def append(self, *, records: list[Record] | None, batch: bytes | None, records_count: int,
                     max_timestamp: int, size: int, on_enqueued=None, producer: str | None = None) -> Appended:
        """Write one Kafka batch; ``on_enqueued(future)`` runs in the same step as the enqueue."""
        await self._wait_for_room(records_count, size)
        self._pending_records += records_count
        self._pending_bytes += size
        try:
            if self.entry_format == "kafka":
                future = self.start_kafka(batch, records_count, max_timestamp, producer)
            else:
                future = self.start_pulsar(records, producer)
            if on_enqueued is not None:
                on_enqueued(future)
            return await asyncio.shield(future)
        finally:
            self._release(records_count, size)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        closed = loop.create_future()
        try:
            self.producer.close_async(lambda result: loop.call_soon_threadsafe(
                lambda: closed.done() or closed.set_result(result)))
            await asyncio.wait_for(closed, 10)
        except Exception as exc:  # closing is best effort; the broker drops it with the connection
            log.debug("closing producer on %s: %r", self.topic_url, exc)
