"""Consumer-group state kept in Pulsar: the ``__offsets`` topic.

Kafka keeps committed offsets and group metadata in its compacted ``__consumer_offsets`` topic; kop
keeps them in the Pulsar partitioned topic ``persistent://<system namespace>/__offsets`` (8 partitions
by default), which Pulsar *topic compaction* keeps small. Each partition is an exclusive log of the
backend (backend/exclusive_log.py): kop/groups reaches Pulsar only through the backend, and sees
dataclasses and coroutines.

Partition of a group
    ``partition_for(group_id, partitions) = crc32(utf-8 of group_id) % partitions``: zlib's CRC-32,
    not Python's ``hash()`` (salted per process), so every gateway and every restart agrees on
    where a group lives. All of a group's records are in that one partition, so loading a partition
    gives its groups whole, and the writes of one group are ordered by one producer.

Keys (the Pulsar message key, which compaction works on): compact JSON arrays, unambiguous whatever
characters group and topic names hold (no separator to escape)::

    ["offset", group_id, topic, partition]   one key per committed (group, topic, partition)
    ["group", group_id]                      the group's metadata (generation, members, assignments)
    ["txn-offsets", group_id, txn_id, n]     offsets transaction n of txn_id committed (TxnOffsetCommit),
                                             until it ends: then the offsets, or nothing, and a tombstone

Values: compact UTF-8 JSON objects with a format version ``"v": 1``::

    offset: {"v":1,"offset":42,"metadata":"..."|null,"timestamp":<ms>,"leader_epoch":-1}
    group:  {"v":1,"protocol_type":..,"generation":..,"protocol":..,"leader":..,"timestamp":<ms>,
             "members":[{"member_id":..,"instance_id":..,"client_id":..,"client_host":..,
                         "rebalance_timeout_ms":..,"session_timeout_ms":..,
                         "subscription":<base64>,"assignment":<base64>}, ...]}
    txn-offsets: {"v":1,"pid":..,"epoch":..,"mode":..,"offsets":[[topic,partition,offset,metadata,
                  timestamp,leader_epoch],..]}

Why compaction keeps every commit: compaction keeps the latest message *per key*. Keyed by group
alone (as KoP's offsets topic is described to be), a compacted topic keeps only a group's last commit
message and loses the offsets of the partitions committed in earlier ones. Here each (group, topic,
partition) is its own key, so after compaction the latest commit of every partition survives, next to
the latest metadata of every group.

Deletion is a tombstone: a message with the same key, an empty payload and Pulsar's null-value flag.
Compaction drops a key whose latest message has an empty payload (the tombstone goes too); messages
written after the last compaction are read as they are, so :meth:`load` treats a null-value or empty
message as "delete this key" as well. Every message carries ``uncompressed_size``: the broker's
compactor sizes a message by it, and without it by the bytes of metadata *and* payload, which are
never 0 (tombstones kept forever, one per deleted key, as seen on Pulsar 4.0.8 with pulsar-client,
which sets it only when it compresses; apache/pulsar#25817 fixes the broker side).

Ownership. Only the gateway coordinating a partition's groups writes to it, and Pulsar enforces it:
writes go through one producer per ``__offsets`` partition opened with access mode **Exclusive**
(:meth:`OffsetsStore.acquire`; named ``kop-gateway-<node id>``, so the partition's stats tell who
owns it). While it is open no other gateway can open one (ProducerFenced), and a producer that lost
its connection and found another owner when reconnecting is fenced for good: its writes fail, and
the store raises :class:`PartitionLost` (the coordinator's custody then lets the partition go)
instead of writing anything. A write for a
partition this gateway does not own raises :class:`NotOwner` (Kafka's NOT_COORDINATOR).

Each record is its own Pulsar message, in call order per partition, with a 30 s send timeout and at
most :data:`MAX_IN_FLIGHT` messages awaiting a receipt per partition. Reads use a compacted reader
from the earliest position to the end Pulsar reports when :meth:`load` starts: every write
acknowledged before :meth:`load` was called is in what it returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..backend import admin as admin_api
from ..backend.exclusive_log import MAX_IN_FLIGHT, ExclusiveLog, read_to_end
from ..backend.wire.errors import WireError
from ..mapping import offsets as packed_layout
from ..mapping.topics import Namespace, PulsarTopic
from .offsets_format import (CommittedOffset, GroupRecord, LoadedPartition, MemberRecord,  # noqa: F401
                             PendingOffsets, apply_record, encode_group, encode_offset, encode_pending, group_key,
                             offset_key, partition_for, pending_key)

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 8
SEND_TIMEOUT_MS = 30_000


class StoreError(Exception):
    """A write, read or setup of ``__offsets`` failed. ``result`` is the Pulsar failure when there is
    one (so ``kop.backend.errors.kafka_error_of`` maps it like any other Pulsar failure)."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class NotOwner(StoreError):
    """This gateway does not (or no longer) own the ``__offsets`` partition written to."""


class PartitionLost(NotOwner):
    """A write found that another gateway owns ``partition`` now (this one's producer was fenced)."""

    def __init__(self, partition: int, message: str) -> None:
        super().__init__(message, WireError("ProducerFenced", message))
        self.partition = partition


def _fenced(message: str) -> NotOwner:
    return NotOwner(message, WireError("ProducerFenced", message))
# Backlog (bytes) past which the broker compacts a partition on its own (topic policy).
COMPACTION_THRESHOLD_BYTES = 1024 * 1024
# Messages a loading reader prefetches.
RECEIVER_QUEUE = 1000
# How long load() waits for a message the broker said is there.
READ_TIMEOUT_S = 30.0
# Messages applied between two yields to the event loop while loading.
LOAD_YIELD_EVERY = 500



# -- records --------------------------------------------------------------------------------------

class OffsetsStore:
    """Group state in ``persistent://<system namespace>/<topic_name>``; see the module docstring.

    ``partitions`` is the partition count asked for; after :meth:`start` it is the count of the
    topic as it exists (a topic created earlier with another count wins, with a warning, so that
    every gateway maps groups the same way).
    """

    def __init__(self, backend, partitions: int = DEFAULT_PARTITIONS, topic_name: str = "__offsets",
                 producer_name: str = "") -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        self.partitions = partitions
        self.namespace: Namespace = backend.system_namespace
        self.topic = PulsarTopic(self.namespace, topic_name)
        self._wire = backend.wire
        self._backend = backend
        self.mode = "contiguous" if getattr(backend, "contiguous", False) else "packed"  # of the offsets written
        self._admin: admin_api.PulsarAdmin = backend.admin
        self._lanes: dict[int, ExclusiveLog] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._closed = False
        self.producer_name = producer_name

    def partition_url(self, partition: int) -> str:
        return f"{self.topic.url}-partition-{partition}"

    def partition_of(self, group_id: str) -> int:
        return partition_for(group_id, self.partitions)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._admin.ensure_namespace(self.namespace)
            try:
                await self._admin.create_partitioned_topic(self.topic, self.partitions)
            except admin_api.Conflict:
                existing = await self._admin.partition_count(self.topic)
                if existing < 1:
                    raise StoreError(f"{self.topic.url} exists but is not a partitioned topic") from None
                if existing != self.partitions:
                    log.warning("%s has %d partitions, not the %d configured; using %d", self.topic.url,
                                existing, self.partitions, existing)
                    self.partitions = existing
            await self._set_compaction_threshold()
        except admin_api.AdminError as exc:
            raise StoreError(f"setting up {self.topic.url}: {exc}") from exc

    async def _set_compaction_threshold(self) -> None:
        """A topic policy on __offsets alone; the namespace policy where topic policies are off.
        (Pulsar 4.0: topic level is POST .../compactionThreshold, namespace level is PUT.)"""
        try:
            await self._admin.set_compaction_threshold(self.topic, COMPACTION_THRESHOLD_BYTES)
        except admin_api.AdminError as exc:
            if exc.status not in (405, 412):
                raise
            log.info("topic policies unavailable (%s); setting the compaction threshold of namespace %s",
                     exc, self.namespace.path)
            await self._admin.set_namespace_compaction_threshold(self.namespace, COMPACTION_THRESHOLD_BYTES)

    async def close(self) -> None:
        self._closed = True
        lanes, self._lanes = list(self._lanes.values()), {}
        for lane in lanes:
            try:
                await asyncio.wait_for(lane.drained(), SEND_TIMEOUT_MS / 1000 + 5)
            except asyncio.TimeoutError:
                log.warning("closing %s with %d writes unconfirmed", lane.url, lane.pending)
            await lane.release()

    # -- writing --------------------------------------------------------------------------------

    async def write_offsets(self, group_id: str, commits: dict[tuple[str, int], CommittedOffset]) -> None:
        await self._write(group_id, [(offset_key(group_id, topic, partition), encode_offset(commit, self.mode))
                                     for (topic, partition), commit in commits.items()])

    async def write_pending(self, group_id: str, pending: PendingOffsets) -> None:
        """A transaction's offsets for the group, stored apart until it ends (offsets_format.py)."""
        await self._write(group_id, [(pending_key(group_id, pending.transactional_id, pending.number),
                                      encode_pending(pending, self.mode))])

    async def resolve_pending(self, group_id: str, pending: PendingOffsets, committed: bool) -> None:
        """The transaction ended: its offsets become the group's commits (``committed``) or are
        dropped; the pending record goes either way, after them."""
        commits = [(offset_key(group_id, topic, partition), encode_offset(commit, self.mode))
                   for (topic, partition), commit in pending.offsets.items()] if committed else []
        await self._write(group_id, [*commits, (pending_key(group_id, pending.transactional_id, pending.number),
                                                None)])

    async def delete_offsets(self, group_id: str, keys: list[tuple[str, int]]) -> None:
        await self._write(group_id, [(offset_key(group_id, topic, partition), None) for topic, partition in keys])

    async def write_group(self, record: GroupRecord) -> None:
        await self._write(record.group_id, [(group_key(record.group_id), encode_group(record))])

    async def delete_group(self, group_id: str, offsets: list[tuple[str, int]]) -> None:
        await self._write(group_id, [(group_key(group_id), None)]
                          + [(offset_key(group_id, topic, partition), None) for topic, partition in offsets])

    async def _write(self, group_id: str, messages: list[tuple[str, bytes | None]]) -> None:
        """Send all, in order, on the group's partition; then wait for every receipt. Raises
        StoreError if any message was not stored (the others may have been)."""
        if not messages:
            return
        self._check_open()
        partition = self.partition_of(group_id)
        futures: list[asyncio.Future] = []
        # Held only while enqueueing: writes to a partition enqueue in call order, and a call with
        # more than MAX_IN_FLIGHT messages keeps its place while it waits for room.
        async with self._locks.setdefault(partition, asyncio.Lock()):
            self._check_open()
            lane = await self._lane(partition)
            for start in range(0, len(messages), MAX_IN_FLIGHT):
                chunk = messages[start:start + MAX_IN_FLIGHT]
                await lane.room(len(chunk))
                futures += [lane.append(key, value) for key, value in chunk]
        results = await asyncio.gather(*futures, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            first = failures[0]
            raise StoreError(f"group {group_id!r}: {len(failures)} of {len(messages)} __offsets writes failed: "
                             f"{first}", getattr(first, "result", None)) from first

    async def _lane(self, partition: int) -> ExclusiveLog:
        """The partition's producer; a new one after a failed write (once the old one's in-flight
        messages are settled, so that nothing sent later can overtake them)."""
        lane = self._lanes.get(partition)
        if lane is None:
            raise _fenced(f"{self.partition_url(partition)} is not owned by this gateway")
        if not lane.lost:
            return lane
        await lane.drained()
        if self._lanes.get(partition) is lane:
            del self._lanes[partition]
        await lane.release()  # before reopening: the broker would fence our own new producer
        try:
            acquired = await self.acquire(partition)
        except StoreError:
            acquired = False  # Pulsar unreachable: the ownership loop tries again
        if not acquired:
            log.warning("lost %s to another gateway", self.partition_url(partition))
            raise PartitionLost(partition, f"{self.partition_url(partition)} is owned by another gateway now")
        return self._lanes[partition]

    # -- ownership ------------------------------------------------------------------------------

    def owns(self, partition: int) -> bool:
        return partition in self._lanes

    def owned(self) -> set[int]:
        return set(self._lanes)

    async def acquire(self, partition: int) -> bool:
        """Open the partition's exclusive producer: True if this gateway owns the partition now,
        False if another one does. Raises StoreError when Pulsar fails otherwise."""
        self._check_open()
        if partition in self._lanes and not self._lanes[partition].lost:
            return True
        url = self.partition_url(partition)
        lane = ExclusiveLog(self._wire, url, self.producer_name, SEND_TIMEOUT_MS / 1000)
        try:
            if not await lane.acquire():
                return False
        except WireError as exc:
            raise StoreError(f"creating a producer on {url}: {exc}", exc) from exc
        if self._closed:
            asyncio.ensure_future(lane.release())
            return False
        self._lanes[partition] = lane
        return True

    async def release(self, partition: int) -> None:
        """Stop owning the partition: wait for its writes to be confirmed, then close its producer
        (another gateway can acquire it from then on)."""
        lane = self._lanes.get(partition)
        if lane is None:
            return
        async with self._locks.setdefault(partition, asyncio.Lock()):
            try:
                await asyncio.wait_for(lane.drained(), SEND_TIMEOUT_MS / 1000 + 5)
            except asyncio.TimeoutError:
                log.warning("releasing %s with %d writes unconfirmed", lane.url, lane.pending)
            if self._lanes.get(partition) is lane:
                del self._lanes[partition]
            await lane.release()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store of {self.topic.url} is closed", WireError("AlreadyClosed"))

    async def to_contiguous(self, topic: PulsarTopic, packed: int) -> int:
        """The contiguous offset of what a packed-mode commit pointed at: the same record when its entry
        is still there with a broker index, else the first readable record after it (what a packed-mode
        fetch at that offset continued with), else the log end."""
        ledger, entry, index = packed_layout.unpack(packed)
        entries = self._backend.entry_index(topic)
        found = await entries.probe(ledger, entry)
        while found is not None and found[0] is None:  # written before indexes: not readable now
            found = await entries.probe(found[1][0], found[1][1] + 1)
        if found is None:
            return await self._backend.log_end(topic)
        span, position = found
        if position == (ledger, entry):
            return span.first + index if index < span.count else span.end
        return span.first

    # -- reading --------------------------------------------------------------------------------

    async def load(self, partition: int) -> LoadedPartition:
        """The latest state of every key in partition ``partition``: its groups and commits."""
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} outside 0..{self.partitions - 1}")
        url = self.partition_url(partition)
        loaded = LoadedPartition()
        applied = 0
        try:
            async for _ledger, _entry, message in read_to_end(self._wire, url, read_compacted=True,
                                                              timeout_s=READ_TIMEOUT_S, receiver_queue=RECEIVER_QUEUE):
                key = message.metadata.get("partition_key")
                if not key:
                    log.warning("__offsets: skipping a message without key on %s", url)
                    continue
                tombstone = message.metadata.get("null_value", False) or not message.payload
                apply_record(loaded, key, None if tombstone else message.payload)
                applied += 1
                if applied % LOAD_YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        except WireError as exc:
            raise StoreError(f"reading {url}: {exc}", exc) from exc
        log.debug("loaded %s: %d messages, %d groups, %d offsets", url, applied, len(loaded.groups),
                  len(loaded.offsets))
        return loaded
