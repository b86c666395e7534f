"""PartitionLog (kop/backend/partition_log.py) with a stand-in writer: the write order holds whatever
each batch waits for (a writer opening, a place reserved before its batch is known, the in-flight
bound), idempotent retries are written once, and failures come back as Kafka error codes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from kop.backend import partition_log as pl
from kop.backend.batch_codec import Entry
from kop.backend.partition_log import Batch, PartitionLog
from kop.backend.wire.errors import WireError
from kop.backend.writer import Appended
from kop.mapping import offsets
from kop.mapping.topics import Namespace
from kop.protocol.errors import ErrorCode, KafkaError
from kop.protocol.records import BatchHeader


class Writer:
    """Keeps each write's callback; the test delivers the receipts."""

    def __init__(self) -> None:
        self.written: list[tuple[bytes, object]] = []
        self.failed = False

    def write(self, entry: Entry, records_count: int, done) -> None:
        self.written.append((entry.payload, done))

    def receipt(self, index: int) -> None:
        self.written[index][1](Appended(offsets.pack(5, index, 0), 5, index, 1))

    async def close(self) -> None:
        pass


class Backend:
    def __init__(self, opened: asyncio.Event | None = None, fail_open: bool = False) -> None:
        self.namespace = Namespace("public", "default")
        self.entry_format = "kafka"
        self.contiguous = False
        self.writer = Writer()
        self.opened = opened
        self.fail_open = fail_open
        self.config = SimpleNamespace(pulsar=SimpleNamespace(operation_timeout_s=5))

    async def open_writer(self, url: str) -> Writer:
        if self.opened is not None:
            await self.opened.wait()
        if self.fail_open:
            raise KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, "no")
        return self.writer


def batch(tag: bytes, size: int = 70, producer_id: int = -1, sequence: int = -1) -> Batch:
    header = BatchHeader(0, size - 12, -1, 2, 0, 0, 0, 1, 1, producer_id, 0, sequence, 1)
    return Batch(header, Entry(b"", tag, 1))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_order_holds_while_the_writer_opens():
    opened = asyncio.Event()
    backend = Backend(opened)
    log = PartitionLog(backend, "t", 0)
    first, second = log.append(batch(b"a")), log.append(batch(b"b"))
    await settle()
    assert backend.writer.written == []
    opened.set()
    await settle()
    assert [p for p, _ in backend.writer.written] == [b"a", b"b"]
    third = log.append(batch(b"c"))  # the writer is open, nothing queued: written within the call
    assert [p for p, _ in backend.writer.written][-1] == b"c"
    for i in range(3):
        backend.writer.receipt(i)
    await settle()
    assert [f.result() for f in (first, second, third)] == [
        (ErrorCode.NONE, offsets.pack(5, i, 0), "") for i in range(3)]
    assert log.high_watermark == offsets.pack(5, 2, 0) + 1


async def test_a_reserved_place_keeps_its_turn():
    backend = Backend()
    log = PartitionLog(backend, "t", 0)
    await log._ensure_writer()
    outcomes: dict[str, tuple] = {}
    slot = log.reserve(lambda o: outcomes.setdefault("first", o))  # its topic's partition count is being looked up
    later = log.append(batch(b"later"))
    cancelled = log.reserve(lambda o: outcomes.setdefault("cancelled", o))
    last = log.append(batch(b"last"))
    await settle()
    assert backend.writer.written == [], "a later batch overtook a reserved place"
    log.fill(slot, batch(b"first"))
    log.cancel(cancelled, (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, "gone"))
    await settle()
    assert [p for p, _ in backend.writer.written] == [b"first", b"later", b"last"]
    assert outcomes["cancelled"][0] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION and "first" not in outcomes
    assert not later.done() and not last.done()


async def test_batches_beyond_the_in_flight_bound_wait_in_order(monkeypatch):
    monkeypatch.setattr(pl, "MAX_PENDING_BYTES", 100)
    backend = Backend()
    log = PartitionLog(backend, "t", 0)
    await log._ensure_writer()
    log.append(batch(b"a", 60))
    waiting, small = log.append(batch(b"b", 60)), log.append(batch(b"c", 10))
    await settle()
    assert [p for p, _ in backend.writer.written] == [b"a"], "60 + 60 > 100 must wait; a small one may not pass"
    backend.writer.receipt(0)
    await settle()
    assert [p for p, _ in backend.writer.written] == [b"a", b"b", b"c"]
    backend.writer.receipt(1)
    backend.writer.receipt(2)
    await settle()
    assert waiting.result()[0] == small.result()[0] == ErrorCode.NONE
    assert log._pending_bytes == 0 and log._pending_records == 0


async def test_an_idempotent_retry_is_written_once():
    backend = Backend()
    log = PartitionLog(backend, "t", 0)
    await log._ensure_writer()
    log._recovered = True  # the partition's tail was read back (producer_recovery.py)
    original = log.append(batch(b"x", producer_id=7, sequence=0))
    retry = log.append(batch(b"x", producer_id=7, sequence=0))  # in flight: answered with the original
    assert len(backend.writer.written) == 1
    backend.writer.receipt(0)
    await settle()
    assert original.result() == retry.result() == (ErrorCode.NONE, offsets.pack(5, 0, 0), "")
    late_retry = log.append(batch(b"x", producer_id=7, sequence=0))
    assert late_retry.result() == original.result() and len(backend.writer.written) == 1
    gap = log.append(batch(b"y", producer_id=7, sequence=5))
    assert gap.result()[0] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


async def test_a_failed_write_is_a_retriable_error_and_its_retry_is_written():
    backend = Backend()
    log = PartitionLog(backend, "t", 0)
    await log._ensure_writer()
    log._recovered = True
    failed = log.append(batch(b"x", producer_id=3, sequence=0))
    backend.writer.written[0][1](WireError("Timeout", "no receipt"))
    await settle()
    assert failed.result()[0] == ErrorCode.REQUEST_TIMED_OUT
    log.append(batch(b"x", producer_id=3, sequence=0))
    assert len(backend.writer.written) == 2, "the retry of a failed batch must be written, not deduplicated"


async def test_a_writer_that_cannot_open_fails_the_waiting_batches():
    backend = Backend(fail_open=True)
    log = PartitionLog(backend, "t", 0)
    outcomes = [log.append(batch(b"a")), log.append(batch(b"b"))]
    await settle()
    assert [o.result()[0] for o in outcomes] == [ErrorCode.TOPIC_AUTHORIZATION_FAILED] * 2
    assert log.unused
