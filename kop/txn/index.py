"""What a gateway knows of every transaction, per partition (pure; fed by view.py with the records
of ``__transactions``, records.py).

For each Kafka partition:
- the **open** transactions (Ongoing or Prepare*): producer id -> start bound. The partition's last
  stable offset (LSO) is the lowest start bound, or the high watermark when none is open: a
  ``read_committed`` consumer gets nothing at or past it;
- the **aborted** ranges (producer id, first offset, ABORT marker's offset), from the persisted
  ``aborted`` records and from completed aborts: a ``read_committed`` Fetch lists those overlapping
  what it returns, and the consumer skips that producer's transactional batches from ``first`` up to
  the marker;
- the **recently committed** ranges, bounded, to tell a committed transaction's batches from those
  of one this gateway has not heard of yet (view.py waits for ``__transactions`` then).

A start bound is at or below the transaction's first record in the partition (state.py), which is
all both uses need: nothing of that producer lies between the bound and its first record.
"""

from __future__ import annotations

import bisect
from collections import deque

from .records import AbortedRange
from .state import PartitionKey, Txn

RECENT_COMMITTED = 64  # committed ranges remembered per partition


class TransactionIndex:
    def __init__(self) -> None:
        self.txns: dict[str, Txn] = {}
        self.open: dict[PartitionKey, dict[int, int]] = {}
        self.aborted: dict[PartitionKey, list[AbortedRange]] = {}   # sorted by first offset
        self.committed: dict[PartitionKey, deque[tuple[int, int, int]]] = {}
        self._opened: dict[str, tuple[int, list[PartitionKey], int]] = {}
        self._closed: dict[str, int] = {}   # the transaction number whose ranges were recorded

    # -- records ----------------------------------------------------------------------------------

    def apply_txn(self, transactional_id: str, txn: Txn | None) -> None:
        """A transactional id's latest record (None: deleted). Ranges are recorded once, when its
        transaction is seen closed for the first time."""
        self.txns.pop(transactional_id, None)
        was_open = self._opened.pop(transactional_id, None)   # (producer id, partitions, number)
        if was_open is not None:
            pid, keys, _ = was_open
            for key in keys:
                opened = self.open.get(key)
                if opened is not None and pid in opened:
                    del opened[pid]
                    if not opened:
                        del self.open[key]
        if txn is None:
            self._closed.pop(transactional_id, None)
            return
        self.txns[transactional_id] = txn
        if txn.state.open:
            for key, bound in txn.partitions.items():
                self.open.setdefault(key, {})[txn.producer_id] = bound
            self._opened[transactional_id] = (txn.producer_id, list(txn.partitions), txn.number)
        elif txn.markers and self._closed.get(transactional_id) != txn.number:
            self._closed[transactional_id] = txn.number
            committed = txn.outcome_of(txn.number)
            for key, marker in txn.markers.items():
                first = txn.partitions.get(key, marker)
                if committed:
                    self.committed.setdefault(key, deque(maxlen=RECENT_COMMITTED)).append(
                        (txn.producer_id, first, marker))
                elif committed is False:
                    self.add_aborted(AbortedRange(key, txn.producer_id, first, marker))

    def add_aborted(self, aborted: AbortedRange) -> None:
        ranges = self.aborted.setdefault(aborted.partition, [])
        at = bisect.bisect_left(ranges, (aborted.first_offset, aborted.producer_id),
                                key=lambda r: (r.first_offset, r.producer_id))
        if at < len(ranges) and (ranges[at].first_offset, ranges[at].producer_id) == (aborted.first_offset,
                                                                                     aborted.producer_id):
            ranges[at] = aborted
        else:
            ranges.insert(at, aborted)

    def remove_aborted(self, partition: PartitionKey, producer_id: int, first_offset: int) -> None:
        ranges = self.aborted.get(partition, [])
        self.aborted[partition] = [r for r in ranges if (r.producer_id, r.first_offset) != (producer_id, first_offset)]
        if not self.aborted[partition]:
            del self.aborted[partition]

    # -- questions ------------------------------------------------------------------------------

    def last_stable_offset(self, partition: PartitionKey, high_watermark: int) -> int:
        opened = self.open.get(partition)
        if not opened:
            return high_watermark
        return min(high_watermark, min(opened.values()))

    def aborted_between(self, partition: PartitionKey, start: int, end: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of the aborted ranges overlapping offsets [start, end)."""
        return [(r.producer_id, r.first_offset) for r in self.aborted.get(partition, ())
                if r.first_offset < end and r.last_offset >= start]

    def explains(self, partition: PartitionKey, producer_id: int, offset: int) -> bool:
        """Is a transactional batch of ``producer_id`` at ``offset`` accounted for: in an open, aborted
        or recently committed transaction of that producer here?"""
        bound = self.open.get(partition, {}).get(producer_id)
        if bound is not None and bound <= offset:
            return True
        for r in self.aborted.get(partition, ()):
            if r.producer_id == producer_id and r.first_offset <= offset <= r.last_offset:
                return True
        return any(pid == producer_id and first <= offset <= last
                   for pid, first, last in self.committed.get(partition, ()))

    def open_transaction_of(self, partition: PartitionKey, producer_id: int) -> int | None:
        """The start bound of that producer's open transaction in the partition, if any."""
        return self.open.get(partition, {}).get(producer_id)
