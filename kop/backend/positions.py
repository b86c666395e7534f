"""Where a partition starts and ends, and which offset a timestamp falls on, as Kafka offsets
(packed Pulsar positions, mapping/offsets.py): what ListOffsets asks. A mixin of PulsarBackend.

Each answer comes from what Pulsar itself says (last message id, internal stats, a publish-time
seek), so it holds for entries this gateway never saw: written by another gateway of the fleet,
by a native Pulsar producer, or before a restart.
"""

from __future__ import annotations

import asyncio

import pulsar

from ..mapping import offsets
from ..mapping.topics import partition_topic
from .errors import kafka_error_of
from .plumbing import call_async, reader_conf
from .reader import PartitionReader, message_offset

# Messages a timestamp lookup may skip past the position Pulsar's seek gave (see offset_for_timestamp).
TIMESTAMP_SCAN_LIMIT = 10_000


class OffsetLookups:
    """Needs ``namespace``, ``admin``, ``client``, ``config``, ``partition_state`` and ``note_written``
    (PulsarBackend has them)."""

    async def latest_offset(self, topic: str, partition: int) -> int:
        """Kafka's log end offset: one past the last record (packed)."""
        ptopic = partition_topic(self.namespace, topic, partition)
        try:
            last = await self.admin.last_message_id(ptopic)
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        ledger, entry, batch = int(last["ledgerId"]), int(last["entryId"]), int(last.get("batchIndex", -1))
        _, state = self.partition_state(topic, partition)
        if entry < 0:
            end = offsets.pack(max(ledger, 0), 0, 0)
        elif batch >= 0:  # a Pulsar batch: Pulsar names its last message
            end = offsets.log_end_offset(ledger, entry, batch + 1)
        elif state.high_watermark > offsets.pack(ledger, entry, 0):
            end = state.high_watermark  # this gateway wrote or read that entry: it knows its records
        else:  # a kafka-format entry holds a whole batch; it was written elsewhere (a fleet, a restart)
            try:
                records = await self.admin.entry_records(ptopic, ledger, entry)
            except Exception as exc:
                raise kafka_error_of(exc) from exc
            end = offsets.log_end_offset(ledger, entry, records or 1)
        self.note_written(state, end)
        return state.high_watermark

    async def last_record(self, topic: str, partition: int) -> tuple[int, int]:
        """(offset, timestamp) for ListOffsets' MAX_TIMESTAMP: the first record of the last entry,
        timestamp unknown (-1). Pulsar keeps no timestamp index to answer it exactly."""
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
        """(offset, timestamp) of the first message published at or after ``timestamp``, or (-1, -1).

        The reader starts at the *end* and then seeks: a reader started at the beginning may already
        have prefetched old messages that arrive after the seek. Messages published before
        ``timestamp`` are skipped all the same (at most TIMESTAMP_SCAN_LIMIT), in case one slips by."""
        url = partition_topic(self.namespace, topic, partition).url
        try:
            reader = await call_async(self.client.create_reader_async, url,
                                       pulsar.MessageId.latest, reader_conf())
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        wrapper = PartitionReader(reader, url, 0)
        try:
            await call_async(reader.seek_async, timestamp)
            for _ in range(TIMESTAMP_SCAN_LIMIT):
                if not await call_async(reader.has_message_available_async):
                    return -1, -1
                future = wrapper.arrival()
                await asyncio.wait_for(asyncio.shield(future), self.config.pulsar.operation_timeout_s)
                message = wrapper._take()
                if message.publish_timestamp() >= timestamp:
                    stamp = message.event_timestamp() or message.publish_timestamp()
                    return message_offset(message), stamp
            return -1, -1
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        finally:
            await wrapper.close()
