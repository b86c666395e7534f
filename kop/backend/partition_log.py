"""One Kafka partition, as the backend keeps it: the single interface handlers use for it.

A :class:`PartitionLog` owns, for its partition:

- the order of writes: batches are written in the order :meth:`append` (or :meth:`reserve`) was
  called, whatever each had to wait for;
- idempotence: the producer table (idempotence.py), rebuilt from the partition's tail before the
  first idempotent write (producer_recovery.py);
- the writer (writer.py), opened on first use and again after it failed;
- its readers, through the backend's reader cache (bounded across partitions);
- the high watermark this gateway has seen.

The hot path is synchronous: when nothing is queued ahead of a batch and the writer is open, the
batch is checked and written to the Pulsar connection within the call, and the caller gets a
future. Anything that must wait (a writer opening, a recovery, the in-flight bound) queues the batch
behind the others and a drain task writes the queue in order. Every result is a :data:`Outcome`
``(error code, base offset, message)``: Pulsar failures are mapped to Kafka codes here, never raised.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .. import metrics
from ..mapping import offsets
from ..mapping.topics import partition_topic
from ..protocol.errors import ErrorCode, KafkaError
from ..protocol.records import BatchHeader
from . import producer_recovery
from .batch_codec import Entry
from .errors import kafka_error_of
from .idempotence import ProducerTable, Verdict, last_sequence
from .reader import PartitionReader
from .writer import PartitionWriter

if TYPE_CHECKING:
    from .pulsar import PulsarBackend

log = logging.getLogger(__name__)

Outcome = tuple[int, int, str]  # (Kafka error code, base offset or -1, error message)

# In-flight data per partition before further batches queue; a bound on memory, not a tuning knob.
MAX_PENDING_RECORDS = 4 * offsets.MAX_BATCH_SIZE
MAX_PENDING_BYTES = 32 * 1024 * 1024
# How long the log start a fetch was checked against is trusted (retention moves it).
FIRST_CACHE_S = 30.0


@dataclass(slots=True)
class Batch:
    """A checked Kafka batch and the Pulsar entry that stores it (batch_codec.entry_of), or a
    transaction marker (batch_codec.marker_entry: a producer's, but not one of its sequence)."""

    header: BatchHeader
    entry: Entry
    marker: bool = False

    @property
    def idempotent(self) -> bool:
        return self.header.producer_id >= 0 and not self.marker


Done = Callable[[Outcome], None]


class Slot:
    """A place in the partition's write order, taken before the batch is known."""
    __slots__ = ("batch", "done", "ready", "answered")

    def __init__(self, done: Done) -> None:
        self.batch: Batch | None = None
        self.done = done
        self.ready = False  # filled or cancelled
        self.answered = False

    def answer(self, outcome: Outcome) -> None:
        if not self.answered:
            self.answered = True
            _call(self.done, outcome)


class _InFlight:
    """An idempotent batch being written: what its duplicates wait for (idempotence.py keeps it
    until the receipt replaces it by the base offset)."""
    __slots__ = ("outcome", "waiters")

    def __init__(self) -> None:
        self.outcome: Outcome | None = None
        self.waiters: list[Done] = []

    def settle(self, outcome: Outcome) -> None:
        self.outcome = outcome
        waiters, self.waiters = self.waiters, []
        for done in waiters:
            _call(done, outcome)


class PartitionLog:
    def __init__(self, backend: "PulsarBackend", topic: str, partition: int) -> None:
        self.backend = backend
        self.topic = topic
        self.partition = partition
        self.pulsar_topic = partition_topic(backend.namespace, topic, partition)
        self.url = self.pulsar_topic.url
        self.producers = ProducerTable()
        self.high_watermark = -1
        self.writer: PartitionWriter | None = None
        self._opening: asyncio.Future | None = None
        self._recovered = False
        self._recovering: asyncio.Future | None = None
        self._queue: collections.deque[Slot] = collections.deque()
        self._draining: asyncio.Task | None = None
        self._room: asyncio.Future | None = None
        self._pending_records = 0
        self._pending_bytes = 0
        # Contiguous offsets (entry_index.py): receipts are numbered in order; one that does not
        # follow the last entry known waits for a probe, and those behind it wait with it.
        self.index = backend.entry_index(self.pulsar_topic) if backend.contiguous else None
        self._numbering: collections.deque = collections.deque()
        self._probing: asyncio.Task | None = None
        self._first: tuple[float, int] | None = None  # (when, the log's first readable offset)

    @property
    def unused(self) -> bool:
        """Holds nothing worth keeping (a partition named by a request and found not to exist)."""
        return (self.writer is None and self._opening is None and not self._queue and self._recovering is None
                and not len(self.producers) and self._pending_records == 0)

    # -- writing --------------------------------------------------------------------------------

    def submit(self, batch: Batch, done: Done) -> None:
        """Write ``batch`` after everything submitted before it; ``done`` gets its :data:`Outcome`
        (within the step of the receipt; possibly before this returns)."""
        if not self._queue and self._can_write(batch):
            self._write(batch, done)
            return
        slot = self.reserve(done)
        self.fill(slot, batch)

    def append(self, batch: Batch) -> asyncio.Future:
        """:meth:`submit` with a future of the :data:`Outcome`."""
        future = asyncio.get_running_loop().create_future()
        self.submit(batch, lambda outcome: future.done() or future.set_result(outcome))
        return future

    def reserve(self, done: Done) -> Slot:
        """Take the next place in write order now, for a batch still being checked."""
        slot = Slot(done)
        self._queue.append(slot)
        return slot

    def fill(self, slot: Slot, batch: Batch) -> None:
        slot.batch, slot.ready = batch, True
        self._advance()

    def cancel(self, slot: Slot, outcome: Outcome) -> None:
        """The batch of ``slot`` was refused before writing: its place is given up."""
        slot.ready = True
        slot.answer(outcome)
        self._advance()

    def _can_write(self, batch: Batch) -> bool:
        writer = self.writer
        return (writer is not None and not writer.failed and (self._recovered or not batch.idempotent)
                and (self._pending_records == 0 or (
                    self._pending_records + batch.header.records_count <= MAX_PENDING_RECORDS
                    and self._pending_bytes + batch.header.size <= MAX_PENDING_BYTES)))

    def _advance(self) -> None:
        """Write the queue's ready head slots that can go now; start the drain task for the rest."""
        queue = self._queue
        while queue and queue[0].ready:
            slot = queue[0]
            if slot.batch is None or slot.answered:  # cancelled
                queue.popleft()
                continue
            if not self._can_write(slot.batch):
                if self._draining is None:
                    self._draining = asyncio.ensure_future(self._drain())
                return
            queue.popleft()
            self._write(slot.batch, slot.answer)

    async def _drain(self) -> None:
        """Makes the head slot writable (writer, recovery, room), then writes what it can."""
        try:
            while self._queue and self._queue[0].ready:
                slot = self._queue[0]
                batch = slot.batch
                if batch is None or slot.answered:
                    self._queue.popleft()
                    continue
                try:
                    await self._ensure_writer()
                except KafkaError as exc:  # every batch waiting would meet the same refusal
                    self._fail_ready((exc.code, -1, exc.message))
                    continue
                try:
                    if batch.idempotent and not self._recovered:
                        await self._recover()
                except KafkaError as exc:
                    self._queue.popleft()
                    slot.answer((exc.code, -1, exc.message))
                    continue
                if not self._can_write(batch):  # the in-flight bound: wait for a receipt
                    self._room = asyncio.get_running_loop().create_future()
                    await self._room
                    continue
                self._advance()
        except Exception:  # a slot must never be left unanswered
            log.exception("writing to %s", self.url)
            for slot in self._queue:
                slot.answer((ErrorCode.UNKNOWN_SERVER_ERROR, -1, "unexpected failure"))
            self._queue.clear()
        finally:
            self._draining = None
        if self._queue and self._queue[0].ready:
            self._advance()

    def _fail_ready(self, outcome: Outcome) -> None:
        """Answer every queued batch up to the first place still waiting for its batch."""
        while self._queue and self._queue[0].ready:
            self._queue.popleft().answer(outcome)

    def _write(self, batch: Batch, done: Done) -> None:
        """Check idempotence and write ``batch`` now; ``done`` gets its Outcome."""
        header = batch.header
        producer_id = header.producer_id
        in_flight = None
        if batch.idempotent:
            first_seq = header.base_sequence
            last_seq = last_sequence(first_seq, header.records_count)
            verdict, original = self.producers.check(producer_id, header.producer_epoch, first_seq, last_seq)
            if verdict is Verdict.DUPLICATE:
                if isinstance(original, _InFlight):  # the original's Outcome, whenever it comes
                    if original.outcome is None:
                        original.waiters.append(done)
                    else:
                        _call(done, original.outcome)
                else:
                    _call(done, (ErrorCode.NONE, original, ""))
                return
            if verdict is Verdict.FENCED:
                _call(done, (ErrorCode.INVALID_PRODUCER_EPOCH, -1, "stale producer epoch"))
                return
            if verdict is Verdict.OUT_OF_ORDER:
                _call(done, (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1, f"unexpected sequence {first_seq}"))
                return
            in_flight = _InFlight()
            self.producers.register(producer_id, header.producer_epoch, first_seq, last_seq, in_flight)
        self._pending_records += header.records_count
        self._pending_bytes += header.size
        try:
            self.writer.write(batch.entry, header.records_count,
                              lambda result: self._written(result, batch, done, in_flight))
        except Exception as exc:  # noqa: BLE001 - answered as a failed write
            self._written(exc, batch, done, in_flight)

    def _written(self, result, batch: Batch, done: Done, in_flight: _InFlight | None) -> None:
        header = batch.header
        self._pending_records -= header.records_count
        self._pending_bytes -= header.size
        if self._room is not None and not self._room.done():
            self._room.set_result(None)
        if isinstance(result, BaseException):
            if batch.idempotent:
                self.producers.forget(header.producer_id, header.base_sequence)
            error = kafka_error_of(result)
            log.warning("produce to %s failed: %s", self.url, error)
            outcome = (error.code, -1, error.message)
        else:
            if self.index is not None:
                self._numbering.append((result, batch, done, in_flight))
                self._number()
                return
            self._stored(result.base_offset, batch, done, in_flight)
            return
        if in_flight is not None:
            in_flight.settle(outcome)
        _call(done, outcome)

    def _stored(self, base_offset: int, batch: Batch, done: Done, in_flight: _InFlight | None) -> None:
        header = batch.header
        if batch.idempotent:
            self.producers.settle(header.producer_id, header.base_sequence, base_offset)
        end = base_offset + header.records_count
        if end > self.high_watermark:
            self.high_watermark = end
        metrics.produced(self.topic, header.size, header.records_count, self.backend.entry_format)
        outcome = (ErrorCode.NONE, base_offset, "")
        if in_flight is not None:
            in_flight.settle(outcome)
        _call(done, outcome)

    def _number(self) -> None:
        """Contiguous offsets for the receipts in order: at once for an entry that follows the last
        entry known, after a probe otherwise (entry_index.py)."""
        while self._numbering and self._probing is None:
            result, batch, done, in_flight = self._numbering[0]
            span = self.index.follows(result.ledger_id, result.entry_id, batch.header.records_count)
            if span is None:
                self._probing = asyncio.ensure_future(self._probe(result.ledger_id, result.entry_id))
                return
            self._numbering.popleft()
            self.index.note(span)
            self._stored(span.first, batch, done, in_flight)

    async def _probe(self, ledger: int, entry: int) -> None:
        result, batch, done, in_flight = self._numbering[0]
        try:
            for attempt in range(3):
                try:
                    found = await self.index.probe(ledger, entry)
                    break
                except Exception:  # noqa: BLE001 - a passing failure: try again, then give up below
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
            if found is None or found[1] != (ledger, entry) or found[0] is None:
                raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR,
                                 f"entry {ledger}:{entry} of {self.url} has no broker index (offsets.mode contiguous)")
        except Exception as exc:  # stored, but its offset is unknown: the client gets a retriable error
            error = exc if isinstance(exc, KafkaError) else kafka_error_of(exc)
            log.warning("numbering entry %d:%d of %s failed: %s", ledger, entry, self.url, error)
            self._numbering.popleft()
            if batch.idempotent:  # its retry is written again (readers skip the repeat)
                self.producers.forget(batch.header.producer_id, batch.header.base_sequence)
            outcome = (ErrorCode.NOT_LEADER_OR_FOLLOWER, -1, str(error))
            if in_flight is not None:
                in_flight.settle(outcome)
            _call(done, outcome)
        else:
            self._numbering.popleft()
            self._stored(found[0].first, batch, done, in_flight)
        finally:
            self._probing = None
        self._number()

    async def _ensure_writer(self) -> None:
        if self.writer is not None and not self.writer.failed:
            return
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open_writer())
        opening = self._opening
        try:
            await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _open_writer(self) -> None:
        old, self.writer = self.writer, None
        if old is not None:
            metrics.PULSAR_RECONNECTS.labels("producer").inc()
            asyncio.ensure_future(old.close())
        self.writer = await self.backend.open_writer(self.url)

    async def _recover(self) -> None:
        """Once, before the first idempotent write (producer_recovery.py)."""
        if self._recovering is None:
            self._recovering = asyncio.ensure_future(producer_recovery.recover(
                self.backend.wire, self.backend.admin, self.pulsar_topic, self.producers,
                self.backend.config.pulsar.operation_timeout_s))
        recovering = self._recovering
        try:
            await asyncio.shield(recovering)
            self._recovered = True
        finally:
            if recovering.done() and (recovering.cancelled() or recovering.exception() is not None):
                self._recovering = None  # the next batch tries again

    async def close(self) -> None:
        if self._draining is not None:
            self._draining.cancel()
        for slot in self._queue:
            slot.answer((ErrorCode.NOT_LEADER_OR_FOLLOWER, -1, "partition closed"))
        self._queue.clear()
        if self.writer is not None:
            await self.writer.close()

    # -- reading --------------------------------------------------------------------------------

    async def in_range(self, offset: int) -> bool:
        """Whether a fetch at ``offset`` is served (contiguous offsets): between the log start and the
        high watermark, both inclusive, as Kafka's broker answers; OFFSET_OUT_OF_RANGE otherwise, so
        ``auto.offset.reset`` applies. The bounds are asked again before an offset is refused."""
        if offset > self.high_watermark:
            await self.backend.latest_offset(self.topic, self.partition)
            if offset > self.high_watermark:
                return False
        now = time.monotonic()
        if self._first is None or offset < self._first[1] or now - self._first[0] > FIRST_CACHE_S:
            self._first = (now, await self.backend.earliest_offset(self.topic, self.partition))
        return offset >= self._first[1]

    def note_end(self, end_offset: int) -> None:
        """Records up to ``end_offset`` exist (a reader saw them, or Pulsar said so)."""
        if end_offset > self.high_watermark:
            self.high_watermark = end_offset

    async def reader_at(self, offset: int) -> PartitionReader:
        """A reader standing at ``offset`` (a cached one if possible), lent until released."""
        return await self.backend.reader_at(self, offset)

    def release(self, reader: PartitionReader, failed: bool = False) -> None:
        if reader.high_offset > self.high_watermark:
            self.high_watermark = reader.high_offset
        self.backend.release_reader(reader, failed)


def _call(done: Done, outcome: Outcome) -> None:
    """A batch's callback; one that raises must not stop the partition's writes."""
    try:
        done(outcome)
    except Exception:
        log.exception("a produce callback failed")
