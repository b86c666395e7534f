"""Reading a Pulsar partition as Kafka batches, with readers cached by the offset they stand at.

A consumer fetches sequentially: each Fetch asks for the offset where the previous one ended. kop
keeps the Pulsar reader that served a fetch, keyed by (partition, next offset), so the next fetch
reuses it (and the entries it already prefetched) instead of seeking again.

Reading never blocks the event loop and never loses an entry: :meth:`PartitionReader.poll` takes
what the reader has received (at most ``fetch.reader_prefetch`` messages' worth, wire/reader.py)
and returns at once; :meth:`PartitionReader.arrival` gives a future that completes when an entry is
there, from any writer (kop, a native Pulsar producer, another gateway). An entry received after a
fetch gave up waiting stays queued for the next fetch.

Each Pulsar entry becomes one Kafka batch: a ``kafka``-format entry is its stored batch with the base
offset rewritten in place (no copy); any other entry (``pulsar`` format, or a native producer's,
batched or not) becomes one uncompressed Kafka batch whose offsets are the messages' packed
positions. An entry that repeats an idempotent batch the reader has passed goes out empty
(resends.py); a new reader starts a few entries early to have passed them.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from dataclasses import dataclass
from typing import Callable

from .. import metrics
from ..mapping import offsets
from ..protocol import records as kafka_records
from .batch_codec import kafka_batch_of
from .convert import ENTRY, ENTRY_BATCH_V2, PRODUCER, RECORDS, TXN
from .entry_index import EntryIndex, span_of_entry
from .resends import SeenBatches, parse_producer_tag, records_of
from .wire.entries import EntryError, decompress, first_message, properties_of
from .wire.errors import WireError
from .wire.reader import WireReader

log = logging.getLogger(__name__)

# What one entry may inflate to when kop converts it (a decompression bomb from a native producer).
MAX_ENTRY_INFLATED = 64 * 1024 * 1024

ReadFailed = WireError


@dataclass(slots=True)
class Polled:
    """What one :meth:`PartitionReader.poll` returned: byte chunks to send as they are."""

    chunks: list
    size: int
    records: int
    stopped_at: int = -1  # where an ``admit`` refusal stopped the poll (-1: it did not)


# admit(producer id, base offset, received at) -> False to stop before that transactional entry.
Admit = Callable[[int, int, float], bool]
_U16, _I64 = struct.Struct(">H"), struct.Struct(">q")


def _kafka_transaction(batch: bytes) -> tuple[int, bool] | None:
    """(producer id, is a marker) of a stored Kafka batch that is transactional, else None."""
    if len(batch) < 61:
        return None
    (attributes,) = _U16.unpack_from(batch, 21)
    if not attributes & 0x10:
        return None
    return _I64.unpack_from(batch, 43)[0], bool(attributes & 0x20)


class PartitionReader:
    """One wire reader and the Kafka fetch position it stands at."""

    def __init__(self, reader: WireReader, topic_url: str, next_offset: int, index: EntryIndex | None = None) -> None:
        self.reader = reader
        self.topic_url = topic_url
        # Contiguous offsets: each entry's from its broker index (entry_index.py); else packed positions.
        self.index = index
        self._unindexed_warned = False
        self.next_offset = next_offset  # where the next Kafka fetch is expected to start
        self.busy = False
        self.last_used = time.monotonic()
        self.high_offset = -1  # one past the highest record seen
        self.closed = False
        self.seen = SeenBatches()  # idempotent batches passed, to step over a resent one (resends.py)

    def arrival(self) -> asyncio.Future:
        """A future done when an entry is ready (it may already be)."""
        return self.reader.arrival()

    def poll(self, max_bytes: int, upto: int | None = None, admit: Admit | None = None) -> Polled:
        """Kafka batches from ``next_offset`` on, from what has been received: at most about
        ``max_bytes``, but always the first batch whole, as Kafka does (KIP-74). ``read_committed``
        (kop/txn): nothing at or past ``upto`` (the last stable offset), and ``admit`` asked about each
        transactional entry before it goes out; an entry either refuses stays for the next poll."""
        self.last_used = time.monotonic()
        fetch_offset = self.next_offset
        chunks: list = []
        size = records = 0
        stopped_at = -1
        while size < max_bytes or not chunks:
            entry = self.reader.take()
            if entry is None:
                break
            if self.index is not None:
                span = span_of_entry(entry)
                if span is None:  # written before the broker stamped indexes: no offsets in this mode
                    if not self._unindexed_warned:
                        log.warning("%s: entry %d:%d has no broker index; entries without one are not readable "
                                    "with offsets.mode contiguous", self.topic_url, entry.ledger_id, entry.entry_id)
                        self._unindexed_warned = True
                    continue
                self.index.note(span)
                base = span.first
            else:
                base = offsets.pack(entry.ledger_id, entry.entry_id, 0)
            metadata = entry.metadata
            props = metadata.get("properties")
            entry_props = properties_of(metadata) if props else {}
            if upto is not None and base >= upto:
                self.reader.put_back(entry)
                break
            kafka_entry = entry_props.get(ENTRY) == ENTRY_BATCH_V2 and "num_messages_in_batch" not in metadata
            if admit is not None and (TXN in entry_props if not kafka_entry else True):
                found = _kafka_transaction(entry.payload) if kafka_entry else _pulsar_transaction(entry_props)
                if found is not None and base >= fetch_offset and not admit(found[0], base, entry.received_at):
                    self.reader.put_back(entry)
                    stopped_at = base
                    break
            if kafka_entry:
                count = int(entry_props.get(RECORDS, "1"))
                tag = entry_props.get(PRODUCER)
                if base + count - 1 < fetch_offset:
                    self.seen.is_resend(tag)  # passed: remembered (see resends.py)
                    continue
                if chunks and size + len(entry.payload) > max_bytes:
                    self.reader.put_back(entry)
                    break
                data = entry.payload
                if self.seen.is_resend(tag):
                    chunks.append(kafka_records.emptied(data, base))
                    size += kafka_records.BATCH_HEADER_SIZE
                    metrics.RESENDS_SKIPPED.inc()
                else:
                    # The stored batch goes out as it is, behind its base offset: no copy is made.
                    chunks.append(base.to_bytes(8, "big"))
                    chunks.append(memoryview(data)[8:])
                    size += len(data)
                    records += count
                self._passed(base + count)
                continue
            count = metadata.get("num_messages_in_batch", 1)
            try:
                inflated = decompress(metadata, entry.payload, MAX_ENTRY_INFLATED)
                first = first_message(metadata, inflated)
            except EntryError as exc:  # a native producer's entry kop cannot read: skipped, loudly
                log.warning("%s: entry %d:%d cannot be read (%s); skipped", self.topic_url, entry.ledger_id,
                            entry.entry_id, exc)
                self._passed(base + count)
                continue
            tag = properties_of(first.metadata).get(PRODUCER)
            if base + count - 1 < fetch_offset:
                self.seen.is_resend(tag)
                continue
            if chunks and size >= max_bytes:
                self.reader.put_back(entry)
                break
            if self.seen.is_resend(tag):
                parsed = parse_producer_tag(tag)
                span = records_of(parsed[2], parsed[3]) if parsed else count
                stamp = metadata.get("publish_time", -1)
                batch = kafka_records.empty_batch(base, span - 1, base_timestamp=stamp, max_timestamp=stamp)
                metrics.RESENDS_SKIPPED.inc()
                self._passed(base + span)
            else:
                skip = max(fetch_offset - base, 0)
                try:
                    batch = kafka_batch_of(metadata, inflated, None, base, skip)
                except (EntryError, ValueError) as exc:
                    log.warning("%s: entry %d:%d cannot be converted (%s); skipped", self.topic_url,
                                entry.ledger_id, entry.entry_id, exc)
                    self._passed(base + count)
                    continue
                records += count - skip
                self._passed(base + count)
            chunks.append(batch)
            size += len(batch)
        return Polled(chunks, size, records, stopped_at)

    def _passed(self, end_offset: int) -> None:
        self.high_offset = max(self.high_offset, end_offset)
        self.next_offset = max(self.next_offset, end_offset)

    async def close(self) -> None:
        self.closed = True
        await self.reader.close()


def _pulsar_transaction(entry_props: dict[str, str]) -> tuple[int, bool] | None:
    value = entry_props.get(TXN)
    if value is None:
        return None
    try:
        return int(value.split(":", 1)[0]), False
    except ValueError:
        return None
