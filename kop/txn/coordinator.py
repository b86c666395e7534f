"""The transaction coordinator: Kafka's transaction protocol over the pure table in state.py, with
the I/O — ``__transactions`` (one exclusive log per partition, like ``__offsets``), the markers in
the transaction's partitions, and the clock.

A transactional id belongs to ``__transactions`` partition ``crc32(id) % partitions``, and that
partition is coordinated by whoever coordinates the ``__offsets`` partition of the same number
(groups/custody.py adopts both): FindCoordinator answers the same gateway for a group and for a
transactional id of the same hash, and one failover moves both. Taking a partition over, the new
coordinator waits until its view has every record of that partition (view.py), copies the
transactions it holds, and finishes those caught in Prepare*: nothing half-done is left behind a
gateway killed mid-transaction.

Order of writes for EndTxn, as in Kafka: Prepare* in ``__transactions``; one marker per partition of
the transaction (protocol/control.py), each after every record of the transaction there (the
producer sends EndTxn once its batches are acknowledged); for an abort, one ``aborted`` record per
partition (the range a read_committed Fetch skips); then Complete*. EndTxn is answered once
Complete* is stored, so a consumer reading right after the commit sees it; a retried EndTxn meanwhile
gets CONCURRENT_TRANSACTIONS. Offsets sent with TxnOffsetCommit are made visible by the group
coordinator when its view shows the outcome (groups: pending transactional offsets).

Deviations from Kafka: InitProducerId gives a new producer id each time (state.py says why); the
producer ids of a transactional id that is not used for ``transactional.id.expiration.ms`` are not
forgotten (its state stays in ``__transactions``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from ..groups.offsets_format import partition_for
from ..protocol.control import Marker
from ..protocol.errors import ErrorCode, KafkaError
from . import state as s
from .records import aborted_key, decode, encode_aborted, encode_txn, txn_key
from .state import PartitionKey, Txn, TxnState
from .view import TransactionView

log = logging.getLogger(__name__)

MARKER_RETRY_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class TxnStorage(Protocol):
    """What the coordinator needs of Pulsar (the backend implements it; tests fake it)."""

    async def acquire(self, partition: int) -> bool: ...
    async def release(self, partition: int) -> None: ...
    def held(self, partition: int) -> bool: ...
    async def append(self, partition: int, records: list[tuple[str, bytes | None]]) -> None: ...
    async def new_producer_id(self) -> int: ...
    async def start_bound(self, key: PartitionKey) -> int: ...
    async def write_marker(self, key: PartitionKey, marker: Marker) -> int: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


def _copy(txn: Txn) -> Txn:
    return decode(txn_key(txn.transactional_id), encode_txn(txn))[1][1]


class TransactionCoordinator:
    def __init__(self, storage: TxnStorage, view: TransactionView, partitions: int, max_timeout_ms: int) -> None:
        self.storage = storage
        self.view = view
        self.partitions = partitions
        self.max_timeout_ms = max_timeout_ms
        self.txns: dict[str, Txn] = {}          # of the partitions this gateway coordinates
        self.owned: set[int] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._completing: dict[str, asyncio.Task] = {}

    def partition_of(self, transactional_id: str) -> int:
        return partition_for(transactional_id, self.partitions)

    def owns(self, transactional_id: str) -> bool:
        partition = self.partition_of(transactional_id)
        return partition in self.owned and self.storage.held(partition)

    # -- custody --------------------------------------------------------------------------------

    async def adopt(self, partition: int) -> bool:
        """Coordinate ``partition``'s transactions from now on; False when another gateway holds it."""
        if not await self.storage.acquire(partition):
            return False
        await self.view.synced(partition)
        adopted = [_copy(t) for tid, t in list(self.view.index.txns.items()) if self.partition_of(tid) == partition]
        for txn in adopted:
            self.txns[txn.transactional_id] = txn
        self.owned.add(partition)
        for txn in adopted:
            if txn.state.preparing:
                log.info("transaction %s was left %s by its coordinator: completing it", txn.transactional_id,
                         txn.state.value)
                self._complete_later(txn)
        log.info("coordinating __transactions partition %d: %d transactional ids", partition, len(adopted))
        return True

    async def release(self, partition: int) -> None:
        self.owned.discard(partition)
        for tid in [t for t in self.txns if self.partition_of(t) == partition]:
            task = self._completing.pop(tid, None)
            if task is not None:
                task.cancel()
            del self.txns[tid]
        await self.storage.release(partition)

    # -- the protocol -----------------------------------------------------------------------------

    async def init_producer_id(self, tid: str, timeout_ms: int, producer_id: int = -1,
                               producer_epoch: int = -1) -> tuple[ErrorCode, int, int]:
        if not 0 < timeout_ms <= self.max_timeout_ms:
            return ErrorCode.INVALID_TRANSACTION_TIMEOUT, -1, -1
        async with self._lock(tid):
            self._check_owner(tid)
            txn = self.txns.get(tid)
            if txn is not None:
                if producer_id >= 0:
                    error = s.check_producer(txn, producer_id, producer_epoch)
                    if error != ErrorCode.NONE and not self._retried_after_timeout(txn, producer_id, producer_epoch):
                        return error, -1, -1
                if txn.state.preparing:
                    return ErrorCode.CONCURRENT_TRANSACTIONS, -1, -1
                if s.abort_for_coordinator(txn, _now_ms(), timed_out=False):
                    await self._store(txn)
                    await self._complete(txn)
            new_id = await self.storage.new_producer_id()
            if txn is None:
                txn = Txn(tid, new_id, 0, timeout_ms, updated_ms=_now_ms())
            else:
                s.reinit(txn, new_id, timeout_ms, _now_ms())
            await self._store(txn)
            self.txns[tid] = txn
            return ErrorCode.NONE, new_id, 0

    async def add_partitions(self, tid: str, producer_id: int, producer_epoch: int,
                             keys: list[PartitionKey]) -> dict[PartitionKey, ErrorCode]:
        async with self._lock(tid):
            error = self._usable(tid, producer_id, producer_epoch)
            if error == ErrorCode.NONE:
                txn = self.txns[tid]
                known = txn.partitions if txn.state is TxnState.ONGOING else {}
                new = [key for key in dict.fromkeys(keys) if key not in known]
                results = await asyncio.gather(*(self.storage.start_bound(key) for key in new),
                                               return_exceptions=True)
                failed = {key: (r.code if isinstance(r, KafkaError) else ErrorCode.UNKNOWN_SERVER_ERROR)
                          for key, r in zip(new, results) if isinstance(r, BaseException)}
                if failed:
                    return {key: failed.get(key, ErrorCode.OPERATION_NOT_ATTEMPTED) for key in keys}
                s.add_partitions(txn, dict(zip(new, results)), _now_ms())
                await self._store(txn)
            return {key: error for key in keys}

    async def verify_partitions(self, tid: str, producer_id: int, producer_epoch: int,
                                keys: list[PartitionKey]) -> dict[PartitionKey, ErrorCode]:
        """AddPartitionsToTxn v4's verify-only form: are they in the open transaction already?"""
        error = self._usable(tid, producer_id, producer_epoch)
        if error != ErrorCode.NONE:
            return {key: error for key in keys}
        txn = self.txns[tid]
        inside = txn.state is TxnState.ONGOING
        return {key: ErrorCode.NONE if inside and key in txn.partitions else ErrorCode.TRANSACTION_ABORTABLE
                for key in keys}

    async def add_offsets(self, tid: str, producer_id: int, producer_epoch: int, group: str) -> ErrorCode:
        async with self._lock(tid):
            error = self._usable(tid, producer_id, producer_epoch)
            if error == ErrorCode.NONE:
                s.add_group(self.txns[tid], group, _now_ms())
                await self._store(self.txns[tid])
            return error

    async def end_txn(self, tid: str, producer_id: int, producer_epoch: int, commit: bool) -> ErrorCode:
        async with self._lock(tid):
            self._check_owner(tid)
            txn = self.txns.get(tid)
            if txn is None:
                return ErrorCode.INVALID_PRODUCER_ID_MAPPING
            error = s.check_producer(txn, producer_id, producer_epoch)
            if error != ErrorCode.NONE:
                if self._retried_after_timeout(txn, producer_id, producer_epoch) and not commit:
                    return ErrorCode.NONE  # the coordinator aborted it already; so be it
                return error
            error, must_write = s.end(txn, commit, _now_ms())
            if error != ErrorCode.NONE or not must_write:
                return error
            await self._store(txn)
            completion = self._complete_later(txn)
        await asyncio.shield(completion)
        return ErrorCode.NONE

    # -- what tools see ---------------------------------------------------------------------------

    def describe(self, tid: str) -> Txn | None:
        return self.txns.get(tid) if self.owns(tid) else None

    def listed(self) -> list[Txn]:
        return [t for t in self.txns.values() if self.partition_of(t.transactional_id) in self.owned]

    # -- timeouts -------------------------------------------------------------------------------

    async def abort_expired(self) -> int:
        """Abort every transaction of this coordinator open longer than its timeout (a periodic task)."""
        now = _now_ms()
        aborted = 0
        for txn in [t for t in self.txns.values() if s.expired(t, now)]:
            async with self._lock(txn.transactional_id):
                if not self.owns(txn.transactional_id) or not s.expired(txn, _now_ms()):
                    continue
                log.info("transaction %s of producer %d timed out after %d ms: aborting it", txn.transactional_id,
                         txn.producer_id, txn.timeout_ms)
                s.abort_for_coordinator(txn, _now_ms(), timed_out=True)
                await self._store(txn)
                self._complete_later(txn)
                aborted += 1
        return aborted

    # -- inside -----------------------------------------------------------------------------------

    def _lock(self, tid: str) -> asyncio.Lock:
        lock = self._locks.get(tid)
        if lock is None:
            lock = self._locks[tid] = asyncio.Lock()
        return lock

    def _check_owner(self, tid: str) -> None:
        if not self.owns(tid):
            raise KafkaError(ErrorCode.NOT_COORDINATOR, f"transactional id {tid!r} is coordinated elsewhere")

    def _usable(self, tid: str, producer_id: int, producer_epoch: int) -> ErrorCode:
        """May this producer add to its transaction now?"""
        self._check_owner(tid)
        txn = self.txns.get(tid)
        if txn is None:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        error = s.check_producer(txn, producer_id, producer_epoch)
        return error if error != ErrorCode.NONE else s.can_add(txn)

    @staticmethod
    def _retried_after_timeout(txn: Txn, producer_id: int, producer_epoch: int) -> bool:
        """The producer of a transaction the coordinator aborted on its timeout (its epoch bumped)."""
        return txn.timed_out and producer_id == txn.producer_id and producer_epoch == txn.producer_epoch - 1

    async def _store(self, txn: Txn, extra: list[tuple[str, bytes | None]] = ()) -> None:
        await self.storage.append(self.partition_of(txn.transactional_id),
                                  [*extra, (txn_key(txn.transactional_id), encode_txn(txn))])

    def _complete_later(self, txn: Txn) -> asyncio.Task:
        task = self._completing.get(txn.transactional_id)
        if task is None or task.done():
            task = self._completing[txn.transactional_id] = asyncio.ensure_future(self._complete(txn))
        return task

    async def _complete(self, txn: Txn) -> None:
        """Markers, aborted ranges, Complete*: retried until stored (a partition that no longer exists
        is skipped: its records went with it)."""
        commit = txn.state is TxnState.PREPARE_COMMIT
        marker = Marker(txn.producer_id, txn.producer_epoch, commit)
        todo = [key for key in txn.partitions if key not in txn.markers]
        results = await asyncio.gather(*(self._write_marker(key, marker) for key in todo))
        for key, offset in zip(todo, results):
            if offset is not None:
                txn.markers[key] = offset
        now = _now_ms()
        aborted = [] if commit else [(aborted_key(key, txn.producer_id, txn.partitions[key]),
                                      encode_aborted(offset, now)) for key, offset in txn.markers.items()]
        s.complete(txn, now)
        for attempt in range(len(MARKER_RETRY_S) + 1):
            try:
                await self._store(txn, aborted)
                break
            except Exception as exc:  # noqa: BLE001 - retried; the state is re-read from here on takeover
                if attempt == len(MARKER_RETRY_S) or not self.owns(txn.transactional_id):
                    raise
                log.warning("completing transaction %s: %s; retrying", txn.transactional_id, exc)
                await asyncio.sleep(MARKER_RETRY_S[attempt])

    async def _write_marker(self, key: PartitionKey, marker: Marker) -> int | None:
        attempt = 0
        while True:
            try:
                return await self.storage.write_marker(key, marker)
            except KafkaError as exc:
                if exc.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                    log.warning("transaction marker for %s/%s-%d skipped: the partition is gone", *key)
                    return None
                log.warning("writing a transaction marker to %s/%s-%d: %s; retrying", *key, exc)
            await asyncio.sleep(MARKER_RETRY_S[min(attempt, len(MARKER_RETRY_S) - 1)])
            attempt += 1
