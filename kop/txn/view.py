"""Every gateway's view of every transaction: ``__transactions`` followed from its start
(backend/follower.py) into a :class:`~kop.txn.index.TransactionIndex`.

Whoever asks about a partition (a ``read_committed`` Fetch, ListOffsets, a transactional Produce,
the group coordinator resolving transactional offsets) asks the view, wherever the transaction's
coordinator runs. The view trails the coordinators by the time a record takes to reach it; where
that matters it first waits for ``__transactions`` (:meth:`TransactionView.synced`):

- a transactional Produce whose transaction the view does not know yet (the producer's
  AddPartitionsToTxn was answered an instant ago): after the wait the view knows it, or it does
  not exist;
- a ``read_committed`` Fetch meeting a transactional batch the view cannot account for: after the
  wait, every transaction whose records were already stored is known (its AddPartitionsToTxn was
  written before them), so a batch still unaccounted for belongs to a committed transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..backend.follower import Follower
from ..groups.offsets_format import partition_for
from ..protocol.errors import ErrorCode
from .index import TransactionIndex
from .records import AbortedRange, RecordError, decode
from .state import PartitionKey, Txn, TxnState, check_producer

log = logging.getLogger(__name__)

SYNC_TIMEOUT_S = 10.0


class TransactionView:
    def __init__(self, backend, topic_url: str, partitions: int) -> None:
        self.backend = backend
        self.topic_url = topic_url
        self.partitions = partitions
        self.index = TransactionIndex()
        self._followers: list[Follower] = []
        self._changed: asyncio.Future | None = None
        self._syncing: dict[int, asyncio.Future] = {}
        self._next: dict[int, asyncio.Future] = {}
        self.synced_at = 0.0   # monotonic time at which the last sync of every partition began

    def partition_url(self, partition: int) -> str:
        return f"{self.topic_url}-partition-{partition}"

    async def start(self) -> None:
        for partition in range(self.partitions):
            follower = Follower(self.backend.wire, self.partition_url(partition), self._apply)
            await follower.start()
            self._followers.append(follower)
        await self.synced()

    async def close(self) -> None:
        for follower in self._followers:
            await follower.close()

    # -- records --------------------------------------------------------------------------------

    def _apply(self, key: str, value: bytes | None) -> None:
        try:
            kind, body = decode(key, value)
        except RecordError as exc:
            log.warning("%s: record %r skipped: %s", self.topic_url, key, exc)
            return
        if kind == "txn":
            tid, txn = body
            self.index.apply_txn(tid, txn)
        else:
            partition, pid, first, last = body
            if last is None:
                self.index.remove_aborted(partition, pid, first)
            else:
                self.index.add_aborted(AbortedRange(partition, pid, first, last))
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    def changed(self) -> asyncio.Future:
        """A future done at the next record applied (a read_committed Fetch waits on it for the last
        stable offset to move)."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    # -- waiting for __transactions --------------------------------------------------------------

    async def synced(self, partition: int | None = None) -> None:
        """Every record written to ``__transactions`` (one partition, or all) before the call is
        applied. Concurrent callers share one wait per partition."""
        started = time.monotonic()
        partitions = range(self.partitions) if partition is None else (partition,)
        await asyncio.gather(*(self._sync_one(p) for p in partitions))
        if partition is None:
            self.synced_at = max(self.synced_at, started)

    async def _sync_one(self, partition: int) -> None:
        running = self._syncing.get(partition)
        if running is None or running.done():
            running = self._syncing[partition] = asyncio.ensure_future(
                self._followers[partition].synced(SYNC_TIMEOUT_S))
            await asyncio.shield(running)
            return
        # The wait in progress may have asked for the end before a record written just before this
        # call: wait for the next one, which every caller arriving meanwhile shares.
        following = self._next.get(partition)
        if following is None:
            following = self._next[partition] = asyncio.ensure_future(self._sync_after(running, partition))
        await asyncio.shield(following)

    async def _sync_after(self, running: asyncio.Future, partition: int) -> None:
        try:
            await running
        except Exception:  # noqa: BLE001 - its callers got the error; this wait asks again
            pass
        self._next.pop(partition, None)
        running = self._syncing[partition] = asyncio.ensure_future(self._followers[partition].synced(SYNC_TIMEOUT_S))
        await running

    # -- questions --------------------------------------------------------------------------------

    def txn(self, transactional_id: str) -> Txn | None:
        return self.index.txns.get(transactional_id)

    def last_stable_offset(self, partition: PartitionKey, high_watermark: int) -> int:
        return self.index.last_stable_offset(partition, high_watermark)

    def aborted_between(self, partition: PartitionKey, start: int, end: int) -> list[tuple[int, int]]:
        return self.index.aborted_between(partition, start, end)

    def explains(self, partition: PartitionKey, producer_id: int, offset: int) -> bool:
        return self.index.explains(partition, producer_id, offset)

    def partition_of(self, transactional_id: str) -> int:
        return partition_for(transactional_id, self.partitions)

    def outcome(self, transactional_id: str, number: int) -> bool | None:
        """Transaction ``number`` of the id: True committed, False aborted, None not ended yet."""
        txn = self.index.txns.get(transactional_id)
        if txn is None:
            return False  # the id is gone: nothing can commit it any more
        known = txn.outcome_of(number)
        if known is not None or number >= txn.number:
            return known
        log.warning("transaction %d of %s ended longer ago than its outcome is remembered: taken as aborted",
                    number, transactional_id)
        return False

    def in_transaction(self, transactional_id: str, producer_id: int, producer_epoch: int,
                       partition: PartitionKey) -> bool:
        """Does the view show the partition in this producer's open transaction? (No waiting.)"""
        txn = self.index.txns.get(transactional_id)
        return (txn is not None and txn.producer_id == producer_id and txn.producer_epoch == producer_epoch
                and txn.state is TxnState.ONGOING and partition in txn.partitions)

    async def open_transaction(self, transactional_id: str, producer_id: int, producer_epoch: int,
                               partition: PartitionKey | None = None) -> int | ErrorCode:
        """The number of the producer's open transaction (which must include ``partition`` when one
        is named), or the error Kafka answers. Waits for ``__transactions`` once before refusing:
        the producer's last AddPartitionsToTxn may be on its way to this view."""
        for attempt in range(2):
            txn = self.index.txns.get(transactional_id)
            if (txn is not None and txn.producer_id == producer_id and txn.producer_epoch == producer_epoch
                    and txn.state is TxnState.ONGOING and (partition is None or partition in txn.partitions)):
                return txn.number
            if attempt == 0:
                await self.synced(self.partition_of(transactional_id))
        if txn is None:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        error = check_producer(txn, producer_id, producer_epoch)
        if error == ErrorCode.INVALID_PRODUCER_ID_MAPPING:
            return error
        if error != ErrorCode.NONE:
            return ErrorCode.INVALID_PRODUCER_EPOCH if partition is not None else ErrorCode.PRODUCER_FENCED
        return ErrorCode.INVALID_TXN_STATE
