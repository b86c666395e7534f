"""Offsets committed inside a transaction (TxnOffsetCommit): held apart, made the group's when the
transaction commits, dropped when it aborts.

Kafka's group coordinator learns a transaction's outcome from the marker its transaction coordinator
writes into ``__consumer_offsets``. kop's group coordinator learns it from the view of
``__transactions`` that every gateway keeps (kop/txn/view.py): whoever coordinates the group,
wherever the transaction is coordinated, nothing has to be sent between gateways. The resolver
looks again at every change of the view (and every second, and right after a partition of
``__offsets`` is adopted), so offsets become visible within moments of the commit; until then
OffsetFetch with ``require_stable`` answers UNSTABLE_OFFSET_COMMIT for those partitions, as Kafka does,
and clients retry.

Which transaction the offsets belong to is fixed when they arrive: the transactional id and the
transaction's number (kop/txn/state.py), read from the view, which must show the producer's
transaction open (the producer called AddOffsetsToTxn first).
"""

from __future__ import annotations

import asyncio
import logging

from ..protocol.errors import ErrorCode
from .scope import display
from .store import CommittedOffset, NotOwner, PendingOffsets, StoreError

log = logging.getLogger(__name__)

RESOLVE_INTERVAL_S = 1.0


class TxnOffsetsResolver:
    """``view``: kop/txn/view.py's TransactionView (``open_transaction``, ``outcome``, ``changed``)."""

    def __init__(self, custody, view, interval_s: float = RESOLVE_INTERVAL_S) -> None:
        self.custody = custody
        self.view = view
        self.interval_s = interval_s
        self._task: asyncio.Task | None = None

    async def commit(self, group_id: str, transactional_id: str, producer_id: int, producer_epoch: int,
                     commits: dict[tuple[str, int], CommittedOffset]) -> ErrorCode:
        """Hold a transaction's offsets for the group (raises NotOwner, StoreError), or Kafka's error
        when the view shows no open transaction of that producer."""
        found = await self.view.open_transaction(transactional_id, producer_id, producer_epoch)
        if isinstance(found, ErrorCode):
            return found
        await self.custody.commit_pending(group_id, PendingOffsets(transactional_id, found, producer_id,
                                                                   producer_epoch, commits))
        return ErrorCode.NONE

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(self.view.changed()), self.interval_s)
            except asyncio.TimeoutError:
                pass
            try:
                await self.resolve_all()
            except Exception:  # the next round tries again
                log.exception("resolving transactional offsets")

    async def resolve_all(self) -> int:
        """Resolve every pending transaction whose outcome is known; how many were."""
        resolved = 0
        for group_id, by_txn in list(self.custody.pending.items()):
            for key in list(by_txn):
                committed = self.view.outcome(*key)
                if committed is None:
                    continue
                try:
                    await self.custody.resolve_pending(group_id, key, committed)
                    resolved += 1
                except (NotOwner, StoreError) as exc:
                    log.info("group %s: transactional offsets of %s not resolved yet: %s", display(group_id),
                             key[0], exc)
        return resolved
