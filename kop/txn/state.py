"""Transaction state: a pure table of states and transitions, and one transactional id's data. No
I/O, no awaiting — the coordinator (coordinator.py) writes the states to ``__transactions``, the
markers to the partitions, and keeps time.

Kafka's transaction states (KIP-98), as kop's coordinator moves through them::

             AddPartitionsToTxn /                 EndTxn(commit)
    Empty ----------------------> Ongoing -------------------------> PrepareCommit --> CompleteCommit
      ^        AddOffsetsToTxn     |  ^  |  EndTxn(abort), a timeout,                     |
      |                            |  +--+  InitProducerId while Ongoing                  |
      |                            +-------------------------------> PrepareAbort ---> CompleteAbort
      |                                                                                   |
      +-------- InitProducerId (a new producer id) -------- any Complete* or Empty <--------+
                                    Complete* --AddPartitionsToTxn--> Ongoing (the next transaction)

The Prepare* states are written to ``__transactions`` before any marker is written; the markers
(one per partition of the transaction, protocol/control.py) are written before Complete*. A
coordinator that takes a transactional id over in a Prepare* state writes the markers again (a
second marker of the same outcome is harmless: consumers skip control batches) and completes it.

Invariants:
- One producer id at a time per transactional id. InitProducerId always gives a *new* producer id
  (Kafka bumps the epoch of the same one): a fenced producer's late batches then carry an id no
  live producer uses, so a read_committed consumer skipping them (it skips by producer id) can never
  skip the new producer's records. Older ids are kept in ``previous_producer_ids`` so their owners
  are answered PRODUCER_FENCED.
- ``partitions`` maps each partition of the current transaction to a *start bound*: the partition's
  log end offset when it joined, at or below the transaction's first offset there. It bounds the
  partition's last stable offset and starts the aborted range (view.py).
- ``number`` counts the transactions begun under this transactional id (it never goes back, across
  producer ids); ``outcomes`` keeps the last few (number, committed), so a group coordinator
  resolving a transaction's offsets after a failover finds its outcome.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..protocol.errors import ErrorCode

MAX_PREVIOUS_IDS = 8
MAX_OUTCOMES = 16


class TxnState(enum.Enum):
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"

    @property
    def preparing(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)

    @property
    def open(self) -> bool:
        """A transaction whose records are not yet decided (Ongoing or Prepare*)."""
        return self in (TxnState.ONGOING, TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)


TRANSITIONS: dict[TxnState, frozenset[TxnState]] = {
    TxnState.EMPTY: frozenset({TxnState.ONGOING, TxnState.EMPTY}),
    TxnState.ONGOING: frozenset({TxnState.ONGOING, TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT}),
    TxnState.PREPARE_COMMIT: frozenset({TxnState.COMPLETE_COMMIT}),
    TxnState.PREPARE_ABORT: frozenset({TxnState.COMPLETE_ABORT}),
    TxnState.COMPLETE_COMMIT: frozenset({TxnState.ONGOING, TxnState.EMPTY}),
    TxnState.COMPLETE_ABORT: frozenset({TxnState.ONGOING, TxnState.EMPTY}),
}

# (namespace "tenant/ns", Kafka topic, partition)
PartitionKey = tuple[str, str, int]


class IllegalTransition(RuntimeError):
    pass


@dataclass(slots=True)
class Txn:
    transactional_id: str           # scoped: "<tenant>/<namespace>/<transactional.id>"
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    previous_producer_ids: list[int] = field(default_factory=list)
    partitions: dict[PartitionKey, int] = field(default_factory=dict)   # -> start bound
    groups: list[str] = field(default_factory=list)                     # scoped group ids
    started_ms: int = 0             # wall clock when the current transaction began
    updated_ms: int = 0
    number: int = 0
    outcomes: list[tuple[int, bool]] = field(default_factory=list)      # (number, committed)
    markers: dict[PartitionKey, int] = field(default_factory=dict)      # marker offsets of the ending one
    timed_out: bool = False         # the current abort was decided by the coordinator's timer

    def move(self, to: TxnState, now_ms: int) -> None:
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"transaction {self.transactional_id}: {self.state.value} -> {to.value}")
        self.state = to
        self.updated_ms = now_ms

    def outcome_of(self, number: int) -> bool | None:
        """True/False when transaction ``number`` committed/aborted, None when unknown or still open."""
        for n, committed in self.outcomes:
            if n == number:
                return committed
        return None


def check_producer(txn: Txn, producer_id: int, producer_epoch: int) -> ErrorCode:
    """Is this the transactional id's live producer? (Kafka answers a stale epoch PRODUCER_FENCED.)"""
    if producer_id != txn.producer_id:
        if producer_id in txn.previous_producer_ids:
            return ErrorCode.PRODUCER_FENCED
        return ErrorCode.INVALID_PRODUCER_ID_MAPPING
    if producer_epoch != txn.producer_epoch:
        return ErrorCode.PRODUCER_FENCED
    return ErrorCode.NONE


def can_add(txn: Txn) -> ErrorCode:
    """May partitions or groups join now? A transaction being completed must finish first."""
    return ErrorCode.CONCURRENT_TRANSACTIONS if txn.state.preparing else ErrorCode.NONE


def begin_if_needed(txn: Txn, now_ms: int) -> None:
    if txn.state is not TxnState.ONGOING:
        txn.move(TxnState.ONGOING, now_ms)
        txn.number += 1
        txn.started_ms = now_ms
        txn.partitions = {}
        txn.groups = []
        txn.markers = {}
        txn.timed_out = False


def add_partitions(txn: Txn, bounds: dict[PartitionKey, int], now_ms: int) -> None:
    """Partitions join the transaction (begun if needed); one already in keeps its first bound."""
    begin_if_needed(txn, now_ms)
    for key, bound in bounds.items():
        txn.partitions.setdefault(key, bound)
    txn.updated_ms = now_ms


def add_group(txn: Txn, group: str, now_ms: int) -> None:
    begin_if_needed(txn, now_ms)
    if group not in txn.groups:
        txn.groups.append(group)
    txn.updated_ms = now_ms


def end(txn: Txn, commit: bool, now_ms: int) -> tuple[ErrorCode, bool]:
    """EndTxn: (error, whether markers must now be written). A retried EndTxn of a completed
    transaction with the same outcome succeeds again, as in Kafka."""
    state = txn.state
    if state is TxnState.ONGOING:
        txn.move(TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT, now_ms)
        return ErrorCode.NONE, True
    if state is (TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT):
        return ErrorCode.CONCURRENT_TRANSACTIONS, False
    if state is (TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT):
        return ErrorCode.NONE, False
    return ErrorCode.INVALID_TXN_STATE, False


def abort_for_coordinator(txn: Txn, now_ms: int, timed_out: bool) -> bool:
    """The coordinator aborts the open transaction (its timeout, or a new InitProducerId): True
    when markers must be written. A timed-out producer's epoch is bumped, so its next request is
    fenced, as in Kafka."""
    if txn.state is not TxnState.ONGOING:
        return False
    txn.move(TxnState.PREPARE_ABORT, now_ms)
    txn.timed_out = timed_out
    if timed_out and txn.producer_epoch < 32767:
        txn.producer_epoch += 1
    return True


def complete(txn: Txn, now_ms: int) -> None:
    committed = txn.state is TxnState.PREPARE_COMMIT
    txn.move(TxnState.COMPLETE_COMMIT if committed else TxnState.COMPLETE_ABORT, now_ms)
    txn.outcomes = (txn.outcomes + [(txn.number, committed)])[-MAX_OUTCOMES:]


def reinit(txn: Txn, producer_id: int, timeout_ms: int, now_ms: int) -> None:
    """InitProducerId: a new producer id at epoch 0; the transaction must be closed first."""
    if txn.state.open:
        raise IllegalTransition(f"transaction {txn.transactional_id}: InitProducerId while {txn.state.value}")
    if txn.producer_id >= 0 and txn.producer_id != producer_id:
        txn.previous_producer_ids = (txn.previous_producer_ids + [txn.producer_id])[-MAX_PREVIOUS_IDS:]
    txn.producer_id, txn.producer_epoch, txn.timeout_ms = producer_id, 0, timeout_ms
    txn.move(TxnState.EMPTY, now_ms)
    txn.partitions, txn.groups, txn.markers = {}, [], {}
    txn.started_ms = 0


def expired(txn: Txn, now_ms: int) -> bool:
    return txn.state is TxnState.ONGOING and now_ms - txn.started_ms > txn.timeout_ms
