"""Contiguous offsets of one partition, as Pulsar's broker entry index gives them (the mapping itself
is mapping/offset_index.py): which offsets an entry holds, where an offset lives, where the log
starts and ends.

An entry's offsets come with it: a reader gets each entry's ``BrokerEntryMetadata.index``. What has
no Pulsar API is asked by **probing**: a short-lived reader subscribes at a position and takes the
first entry delivered (that entry, or the next one that exists) with its index (a few milliseconds
against a local broker). Probes answer:

- a Produce whose entry does not directly follow the last entry known (the first write after a
  start, a ledger rollover, another writer in between): the receipt names the entry, a probe its
  index. Entries that follow the last known one are numbered without asking (:meth:`EntryIndex.follows`);
- where offset ``x`` lives: the nearest known entry below ``x`` when it is close (the reader steps
  forward from there), else a binary search over the partition's ledgers and then over the entries
  of one ledger, a probe per step (:meth:`EntryIndex.position_of`);
- the log start (the first entry that has an index) and the log end (after the last entry).

Entries written before the broker stamped indexes (the interceptor was enabled later) have none:
they hold no contiguous offsets and are not readable in this mode; the log starts after them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..mapping.offset_index import SparseIndex, Span, span_of
from ..mapping.topics import PulsarTopic
from .convert import ENTRY, ENTRY_BATCH_V2, RECORDS
from .wire.client import WireClient
from .wire.entries import properties_of
from .wire.reader import Entry, WireReader

log = logging.getLogger(__name__)

# How far (in records) a reader may start below its offset and step forward, rather than search.
SCAN_LIMIT = 20_000
PROBE_TIMEOUT_S = 10.0


def entry_count(entry: Entry) -> int:
    """How many Kafka records (offsets) an entry holds: its Kafka batch's record count in the
    ``kafka`` format, its batch size otherwise (what its producer declared to Pulsar)."""
    metadata = entry.metadata
    if "num_messages_in_batch" in metadata:
        return max(metadata["num_messages_in_batch"], 1)
    if metadata.get("properties"):
        props = properties_of(metadata)
        if props.get(ENTRY) == ENTRY_BATCH_V2:
            return max(int(props.get(RECORDS, "1")), 1)
    return 1


def span_of_entry(entry: Entry) -> Span | None:
    """The offsets of a delivered entry; None when the broker did not stamp it."""
    if entry.broker_index is None:
        return None
    return span_of(entry.broker_index, entry_count(entry), entry.ledger_id, entry.entry_id)


class EntryIndex:
    def __init__(self, wire: WireClient, admin: Any, topic: PulsarTopic, max_spans: int = 4096) -> None:
        self.wire = wire
        self.admin = admin
        self.topic = topic
        self.known = SparseIndex(max_spans)
        self.probes = 0  # counted for the seek-cost figures (benchmarks)

    # -- what kop sees ------------------------------------------------------------------------

    def note(self, span: Span) -> None:
        self.known.note(span)

    def follows(self, ledger: int, entry: int, count: int) -> Span | None:
        """The offsets of entry (ledger, entry) when it directly follows the last entry known in the
        same ledger (nothing can lie between them); None when that cannot be told without a probe."""
        last = self.known.last()
        if last is not None and last.ledger == ledger and last.entry + 1 == entry:
            return Span(last.end, count, ledger, entry)
        return None

    # -- probes -------------------------------------------------------------------------------

    async def probe(self, ledger: int, entry: int) -> tuple[Span | None, tuple[int, int]] | None:
        """The first entry at or after (ledger, entry): its offsets (None if it has no index) and
        its position; None when there is no such entry."""
        self.probes += 1
        reader = await WireReader(self.wire, self.topic.url, (ledger, entry), receiver_queue=2).start()
        try:
            last = await reader.last_message_id()
            if last[1] < 0 or (ledger, entry) > last:
                return None
            found = reader.take()
            while found is None:
                await asyncio.wait_for(asyncio.shield(reader.arrival()), PROBE_TIMEOUT_S)
                found = reader.take()
        finally:
            await reader.close()
        span = span_of_entry(found)
        if span is not None:
            self.known.note(span)
        return span, (found.ledger_id, found.entry_id)

    async def _ledgers(self) -> list[tuple[int, int]]:
        """(ledger id, entries) of the partition's ledgers, oldest first (the open one last)."""
        stats = await self.admin.internal_stats(self.topic)
        ledgers = stats.get("ledgers", [])
        out = []
        for i, ledger in enumerate(ledgers):
            count = int(ledger.get("entries", 0))
            if i == len(ledgers) - 1:
                count = max(count, int(stats.get("currentLedgerEntries", 0)))
            out.append((int(ledger["ledgerId"]), count))
        return out

    async def first(self) -> Span | None:
        """The first entry that has an index (the log start), or None when there is none."""
        for ledger, count in await self._ledgers():
            if count <= 0:
                continue
            position = (ledger, 0)
            while True:
                found = await self.probe(*position)
                if found is None:
                    return None
                span, (at_ledger, at_entry) = found
                if span is not None:
                    return span
                position = (at_ledger, at_entry + 1)  # written before indexes: not readable here
        return None

    async def last(self) -> Span | None:
        """The last entry, or None when the partition holds none (or the last has no index)."""
        last = await self.admin.last_message_id(self.topic)
        ledger, entry = int(last["ledgerId"]), int(last["entryId"])
        if entry < 0:
            return None
        known = self.known.last()
        if known is not None and (known.ledger, known.entry) == (ledger, entry):
            return known
        found = await self.probe(ledger, entry)
        return found[0] if found else None

    async def position_of(self, offset: int) -> tuple[int, int] | None:
        """Where a reader for ``offset`` starts: the entry holding it, or an entry at most
        SCAN_LIMIT records below it. None when no entry holds ``offset`` or anything below it."""
        near = self.known.floor(offset)
        if near is not None and offset - near.first <= SCAN_LIMIT:
            return near.ledger, near.entry
        span = await self.at_or_below(offset)
        return (span.ledger, span.entry) if span is not None else None

    async def at_or_below(self, offset: int) -> Span | None:
        """The entry with the greatest first offset not above ``offset``, exactly (None when the first
        entry already starts above it, or there is none)."""
        near = self.known.floor(offset)
        if near is not None and offset < near.end:
            return near
        nxt = self.known.after(offset)
        if near is not None and nxt is not None and near.end == nxt.first:
            return near  # unreachable: offsets are contiguous (kept for safety)
        return await self._search(offset)

    async def cursor_target(self, offset: int) -> tuple[int, int] | None:
        """Where a subscription's read position goes for committed offset ``offset``: the entry holding
        it, or the next entry when ``offset`` is past an entry's end (Pulsar takes the next existing)."""
        span = await self.at_or_below(offset)
        if span is None:
            first = await self.first()
            return (first.ledger, first.entry) if first is not None else None
        return (span.ledger, span.entry) if offset < span.end else (span.ledger, span.entry + 1)

    async def _search(self, offset: int) -> Span | None:
        """Binary search: the ledger whose first entry is the last one at or below ``offset``, then
        the entry of that ledger likewise."""
        ledgers = [(ledger, count) for ledger, count in await self._ledgers() if count > 0]
        if not ledgers:
            return None
        low, high, best = 0, len(ledgers) - 1, None
        while low <= high:  # the last ledger whose first record is <= offset
            mid = (low + high) // 2
            found = await self.probe(ledgers[mid][0], 0)
            span = found[0] if found else None
            if span is not None and span.first <= offset:
                best, low = mid, mid + 1
            else:
                high = mid - 1
        if best is None:
            return None
        ledger, count = ledgers[best]
        low, high, answer = 0, count - 1, None
        while low <= high:  # the last entry of that ledger whose first record is <= offset
            mid = (low + high) // 2
            found = await self.probe(ledger, mid)
            span = found[0] if found else None
            if span is not None and found[1][0] == ledger and span.first <= offset:
                answer, low = span, found[1][1] + 1
            else:
                high = mid - 1
        return answer


def missing_entry_index(runtime: dict[str, str]) -> str:
    """What a Pulsar's runtime configuration lacks for contiguous offsets ("" when nothing)."""
    missing = []
    if "AppendIndexMetadataInterceptor" not in runtime.get("brokerEntryMetadataInterceptors", ""):
        missing.append("brokerEntryMetadataInterceptors=org.apache.pulsar.common.intercept.AppendIndexMetadataInterceptor")
    if runtime.get("exposingBrokerEntryMetadataToClientEnabled", "false").lower() != "true":
        missing.append("exposingBrokerEntryMetadataToClientEnabled=true")
    return " and ".join(missing)
