"""Where a partition starts and ends, and which offset a timestamp falls on, as Kafka offsets
(contiguous ones through the broker entry index, entry_index.py; or packed Pulsar positions,
mapping/offsets.py): what ListOffsets asks. A mixin of PulsarBackend.

Each answer comes from what Pulsar itself says (last message id, internal stats, a publish-time
seek), so it holds for entries this gateway never saw: written by another gateway of the fleet,
by a native Pulsar producer, or before a restart.
"""

from __future__ import annotations

import asyncio

from ..mapping import offsets
from ..mapping.topics import partition_topic
from .entry_index import span_of_entry
from .errors import kafka_error_of
from .wire.entries import split
from .wire.reader import WireReader


class OffsetLookups:
    """Needs ``namespace``, ``admin``, ``wire``, ``config`` and ``partition_log`` (PulsarBackend has
    them)."""

    async def latest_offset(self, topic: str, partition: int) -> int:
        """Kafka's log end offset: one past the last record."""
        if self.contiguous:
            log = self.partition_log(topic, partition)
            try:
                last = await log.index.last()
                end = last.end if last is not None else (await self._empty_end(log))
            except Exception as exc:
                raise kafka_error_of(exc) from exc
            log.note_end(end)
            return log.high_watermark
        ptopic = partition_topic(self.namespace, topic, partition)
        try:
            last = await self.admin.last_message_id(ptopic)
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        ledger, entry, batch = int(last["ledgerId"]), int(last["entryId"]), int(last.get("batchIndex", -1))
        log = self.partition_log(topic, partition)
        if entry < 0:
            end = offsets.pack(max(ledger, 0), 0, 0)
        elif batch >= 0:  # a Pulsar batch: Pulsar names its last message
            end = offsets.log_end_offset(ledger, entry, batch + 1)
        elif log.high_watermark > offsets.pack(ledger, entry, 0):
            end = log.high_watermark  # this gateway wrote or read that entry: it knows its records
        else:  # a kafka-format entry holds a whole batch; it was written elsewhere (a fleet, a restart)
            try:
                records = await self.admin.entry_records(ptopic, ledger, entry)
            except Exception as exc:
                raise kafka_error_of(exc) from exc
            end = offsets.log_end_offset(ledger, entry, records or 1)
        log.note_end(end)
        return log.high_watermark

    async def _empty_end(self, log) -> int:
        """The log end of a partition whose last entry tells nothing (none, or none with an index):
        what this gateway knows, else 0."""
        return max(log.high_watermark, 0)

    async def last_record(self, topic: str, partition: int) -> tuple[int, int]:
        """(offset, timestamp) for ListOffsets' MAX_TIMESTAMP: the first record of the last entry,
        timestamp unknown (-1). Pulsar keeps no timestamp index to answer it exactly."""
        if self.contiguous:
            try:
                last = await self.partition_log(topic, partition).index.last()
            except Exception as exc:
                raise kafka_error_of(exc) from exc
            return (last.first, -1) if last is not None else (-1, -1)
        ptopic = partition_topic(self.namespace, topic, partition)
        try:
            last = await self.admin.last_message_id(ptopic)
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        if int(last["entryId"]) < 0:
            return -1, -1
        return offsets.pack(int(last["ledgerId"]), int(last["entryId"]), max(int(last.get("batchIndex", 0)), 0)), -1

    async def earliest_offset(self, topic: str, partition: int) -> int:
        """The first entry's offset; when empty, the log end but never past the empty ledger's start
        (a write landing between the two queries must not be skipped by a reset to "earliest")."""
        if self.contiguous:
            log = self.partition_log(topic, partition)
            end = await self.latest_offset(topic, partition)  # asked first: a write racing us lands at or after it
            try:
                first = await log.index.first()
            except Exception as exc:
                raise kafka_error_of(exc) from exc
            return first.first if first is not None else end
        ptopic = partition_topic(self.namespace, topic, partition)
        try:
            stats = await self.admin.internal_stats(ptopic)
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        ledgers = stats.get("ledgers", [])
        for i, ledger in enumerate(ledgers):  # the open (last) ledger's count is currentLedgerEntries
            current = int(stats.get("currentLedgerEntries", 0)) if i == len(ledgers) - 1 else 0
            if max(ledger.get("entries", 0), current) > 0:
                return offsets.pack(int(ledger["ledgerId"]), 0, 0)
        end = await self.latest_offset(topic, partition)  # later writes land in ledgers[-1] or newer
        return min(end, offsets.pack(int(ledgers[-1]["ledgerId"]), 0, 0)) if ledgers else end

    async def offset_for_timestamp(self, topic: str, partition: int, timestamp: int) -> tuple[int, int]:
        """(offset, timestamp) of the first entry published at or after ``timestamp``, or (-1, -1).

        Pulsar finds the entry (admin get-message-id, a search by publish time, as its own
        seek-by-time); the record's timestamp is read from the entry itself."""
        ptopic = partition_topic(self.namespace, topic, partition)
        try:
            found = await self.admin.message_id_at(ptopic, timestamp)
            last = await self.admin.last_message_id(ptopic)
            if int(last["entryId"]) < 0 or found > (int(last["ledgerId"]), int(last["entryId"])):
                return -1, -1
            reader = await WireReader(self.wire, ptopic.url, start=found, receiver_queue=2).start()
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        try:
            entry = reader.take()
            while entry is None:
                await asyncio.wait_for(reader.arrival(), self.config.pulsar.operation_timeout_s)
                entry = reader.take()
            metadata = entry.metadata
            stamp = metadata.get("event_time", 0)
            if "num_messages_in_batch" in metadata:
                singles = split(metadata, entry.payload)
                stamp = singles[0].metadata.get("event_time", 0) if singles else 0
            if self.contiguous:
                span = span_of_entry(entry)
                if span is None:
                    return -1, -1
                offset = span.first
            else:
                offset = offsets.pack(entry.ledger_id, entry.entry_id, 0)
            return offset, stamp or metadata.get("publish_time", -1)
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        finally:
            await reader.close()
