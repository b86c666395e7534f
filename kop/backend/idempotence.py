"""Idempotent-producer sequence checks for one partition: a pure table, no I/O.

Kafka >= 3 clients enable idempotence by default. Each batch carries (producer_id, producer_epoch,
base_sequence); the broker must write a batch once even when the client retries it, and answer the
retry with the offset of the original. Like Kafka, kop remembers the last
:data:`BATCHES_REMEMBERED` batches of every producer on every partition.

Decisions for one incoming batch (first_seq .. last_seq) against what is remembered:

    epoch < known epoch                        -> INVALID_PRODUCER_EPOCH (a zombie)
    same (first_seq, last_seq) as a remembered -> duplicate: the original's result (awaited if the
                                                  original is still being written)
    first_seq == last remembered last_seq + 1  -> append
    (sequences wrap from 2**31-1 to 0)
    epoch > known epoch, or producer unknown   -> append and start afresh (a producer older than
                                                  what a restarted gateway read back from the
                                                  partition, see producer_recovery.py; refusing its
                                                  next sequence would break it)
    otherwise                                  -> OUT_OF_ORDER_SEQUENCE_NUMBER

Invariant: a batch is registered (:meth:`ProducerTable.register`) before its write starts, in the
same event-loop step as the check, so a retry arriving while the original is in flight is seen
as a duplicate rather than written twice.
"""

from __future__ import annotations

import time

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

BATCHES_REMEMBERED = 5
# Producers remembered per partition, the least recently writing forgotten first (a bound on memory:
# every client restart brings a new producer id).
MAX_PRODUCERS = 10_000
SEQUENCE_MODULUS = 1 << 31  # sequences wrap from 2**31-1 to 0


class Verdict(Enum):
    APPEND = "append"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    FENCED = "fenced"


@dataclass(slots=True)
class _Batch:
    first_seq: int
    last_seq: int
    result: Any  # an awaitable (future) or a final base offset


@dataclass(slots=True)
class _Producer:
    epoch: int
    batches: deque = field(default_factory=lambda: deque(maxlen=BATCHES_REMEMBERED))
    last_ms: int = -1  # wall clock of its last batch here (DescribeProducers)


def last_sequence(base_sequence: int, records_count: int) -> int:
    return (base_sequence + records_count - 1) % SEQUENCE_MODULUS


class ProducerTable:
    __slots__ = ("_producers",)

    def __init__(self) -> None:
        self._producers: dict[int, _Producer] = {}

    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int) -> tuple[Verdict, Any]:
        state = self._producers.get(producer_id)
        if state is None or epoch > state.epoch:
            return Verdict.APPEND, None
        if epoch < state.epoch:
            return Verdict.FENCED, None
        for batch in state.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return Verdict.DUPLICATE, batch.result
        if not state.batches or first_seq == (state.batches[-1].last_seq + 1) % SEQUENCE_MODULUS:
            return Verdict.APPEND, None
        return Verdict.OUT_OF_ORDER, None

    def register(self, producer_id: int, epoch: int, first_seq: int, last_seq: int, result: Any) -> None:
        state = self._producers.pop(producer_id, None)  # re-inserted last: the least recent goes first
        if state is None or epoch > state.epoch:
            state = _Producer(epoch)
        self._producers[producer_id] = state
        state.batches.append(_Batch(first_seq, last_seq, result))
        state.last_ms = int(time.time() * 1000)
        if len(self._producers) > MAX_PRODUCERS:
            del self._producers[next(iter(self._producers))]

    def settle(self, producer_id: int, first_seq: int, result: Any) -> None:
        """Replace an in-flight batch's future by its final result."""
        state = self._producers.get(producer_id)
        if state is not None:
            for batch in state.batches:
                if batch.first_seq == first_seq:
                    batch.result = result

    def forget(self, producer_id: int, first_seq: int) -> None:
        """A write failed: drop it so the client's retry is written, not answered as a duplicate."""
        state = self._producers.get(producer_id)
        if state is not None:
            kept = [b for b in state.batches if b.first_seq != first_seq]
            state.batches.clear()
            state.batches.extend(kept)

    def __len__(self) -> int:
        return len(self._producers)

    def active(self) -> list[tuple[int, int, int, int]]:
        """(producer id, epoch, last sequence, last write ms) of every producer remembered."""
        return [(pid, p.epoch, p.batches[-1].last_seq if p.batches else -1, p.last_ms)
                for pid, p in self._producers.items()]
