"""PartitionWriter's bound on in-flight bytes (kop/backend/writer.py), with a stand-in for the
Pulsar producer: batches beyond the bound wait, first come first served (a small batch does not
overtake a large one already waiting), and each receipt lets the next one go."""

from __future__ import annotations

import asyncio

from kop.backend import writer as writer_mod
from kop.backend.writer import PartitionWriter


class MessageId:
    def __init__(self, entry: int) -> None:
        self.entry = entry

    def ledger_id(self) -> int:
        return 7

    def entry_id(self) -> int:
        return self.entry

    def batch_index(self) -> int:
        return -1


class Producer:
    """Keeps each send's callback; the test delivers the receipts."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, object]] = []

    def send_async(self, message, callback) -> None:
        self.sent.append((message.data(), callback))

    def flush_async(self, callback) -> None:
        pass


def _append(writer: PartitionWriter, tag: bytes, size: int) -> asyncio.Task:
    return asyncio.ensure_future(writer.append(records=None, batch=tag, records_count=1, max_timestamp=0, size=size))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_batches_wait_for_room_in_arrival_order(monkeypatch):
    monkeypatch.setattr(writer_mod, "MAX_PENDING_BYTES", 100)
    producer = Producer()
    writer = PartitionWriter(producer, "kafka", "persistent://public/default/t-partition-0")

    first, second, small = _append(writer, b"first", 60), _append(writer, b"second", 60), _append(writer, b"small", 10)
    await _settle()
    assert [data for data, _ in producer.sent] == [b"first"], "the second (60 + 60 > 100) must wait"
    assert not small.done(), "a batch that fits must not overtake one already waiting"
    producer.sent[0][1](writer_mod._pulsar.Result.Ok, MessageId(0))  # Pulsar's receipt for the first
    await _settle()
    assert first.done() and first.result().entry_id == 0
    assert [data for data, _ in producer.sent] == [b"first", b"second", b"small"]  # 60 + 10 fit together
    for i, (_, receipt) in enumerate(producer.sent[1:], start=1):
        receipt(writer_mod._pulsar.Result.Ok, MessageId(i))
    await _settle()
    assert second.result().entry_id == 1 and small.result().entry_id == 2
    assert writer._pending_bytes == 0 and writer._pending_records == 0 and not writer._room_waiters


async def test_a_cancelled_waiter_lets_the_next_one_go(monkeypatch):
    monkeypatch.setattr(writer_mod, "MAX_PENDING_BYTES", 100)
    producer = Producer()
    writer = PartitionWriter(producer, "kafka", "persistent://public/default/t-partition-0")

    _append(writer, b"a", 90)
    waiting, behind = _append(writer, b"b", 90), _append(writer, b"c", 5)
    await _settle()
    waiting.cancel()  # its client went away
    await _settle()
    assert [data for data, _ in producer.sent] == [b"a", b"c"], "the one behind the cancelled waiter is stuck"
    for i, (_, receipt) in enumerate(producer.sent):
        receipt(writer_mod._pulsar.Result.Ok, MessageId(i))
    await _settle()
    assert behind.done() and not writer._room_waiters


async def test_order_gate_is_idle_only_when_every_ticket_is_served_or_released():
    from kop.backend.writer import OrderGate
    gate = OrderGate()
    assert gate.idle
    first, second = gate.take(), gate.take()
    assert not gate.idle
    gate.release(second)  # released before its turn: skipped later
    assert not gate.idle
    await gate.turn(first)
    gate.release(first)
    assert gate.idle
