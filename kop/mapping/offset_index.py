"""Contiguous Kafka offsets <-> Pulsar positions, through Pulsar's broker entry index (pure).

With ``offsets.mode = "contiguous"``, a partition's records are numbered 0, 1, 2, ... as Kafka numbers
them. The numbering is Pulsar's own: a broker with ``AppendIndexMetadataInterceptor`` stamps every
entry it stores with ``index``, the running count of messages in the partition minus one, i.e. the
number of its *last* message, counting each entry as the ``num_messages`` its producer declared
(a Kafka batch of n records is one entry declaring n, in either entry format). So an entry with
index ``i`` declaring ``n`` holds offsets ``i - n + 1 .. i``, whoever wrote it: kop, another
gateway, a native Pulsar producer. Offsets survive restarts, rollovers, unloads and failovers
because they are stored with the data.

The other direction, offset -> position, has no Pulsar API: :class:`SparseIndex` remembers where the
entries kop has seen (written or read) begin, and a reader starts at the nearest one below; a
partition kop knows nothing of is searched (backend/offset_index.py probes entries).

Invariants (tests/unit/test_offset_index.py): spans are kept sorted and disjoint; ``floor(x)`` is
the known entry with the greatest first offset not above ``x``; memory is bounded by
``max_spans``: when full, every other span is dropped (the index thins out evenly, so a lookup
lands at most a few entries further from its target, never wrong).
"""

from __future__ import annotations

import bisect
from typing import NamedTuple


class Span(NamedTuple):
    """The offsets ``first .. first + count - 1`` are the records of entry (ledger, entry)."""
    first: int
    count: int
    ledger: int
    entry: int

    @property
    def end(self) -> int:
        """The offset after the entry's last record."""
        return self.first + self.count


def span_of(broker_index: int, count: int, ledger: int, entry: int) -> Span:
    """The records of an entry stamped ``broker_index`` that declared ``count`` messages."""
    if count < 1:
        raise ValueError(f"an entry holds at least one message, not {count}")
    return Span(broker_index - count + 1, count, ledger, entry)


class SparseIndex:
    """Known entries of one partition, by first offset (see the module docstring)."""

    def __init__(self, max_spans: int = 4096) -> None:
        self.max_spans = max(max_spans, 2)
        self._firsts: list[int] = []
        self._spans: list[Span] = []

    def __len__(self) -> int:
        return len(self._spans)

    def note(self, span: Span) -> None:
        """Remember an entry; one already known (same first offset) is replaced."""
        i = bisect.bisect_left(self._firsts, span.first)
        if i < len(self._firsts) and self._firsts[i] == span.first:
            self._spans[i] = span
            return
        self._firsts.insert(i, span.first)
        self._spans.insert(i, span)
        if len(self._spans) > self.max_spans:
            # Keep the newest (the tail is where consumers read) and every other one before it.
            self._spans = self._spans[-2::-2][::-1] + [self._spans[-1]]
            self._firsts = [s.first for s in self._spans]

    def floor(self, offset: int) -> Span | None:
        """The known entry with the greatest first offset not above ``offset``."""
        i = bisect.bisect_right(self._firsts, offset)
        return self._spans[i - 1] if i else None

    def after(self, offset: int) -> Span | None:
        """The known entry with the smallest first offset above ``offset``."""
        i = bisect.bisect_right(self._firsts, offset)
        return self._spans[i] if i < len(self._spans) else None

    def last(self) -> Span | None:
        return self._spans[-1] if self._spans else None

    def forget_before(self, offset: int) -> None:
        """Drop what ends at or before ``offset`` (the log start moved past it)."""
        i = 0
        while i < len(self._spans) and self._spans[i].end <= offset:
            i += 1
        if i:
            del self._spans[:i], self._firsts[:i]

    def clear(self) -> None:
        self._spans.clear()
        self._firsts.clear()
