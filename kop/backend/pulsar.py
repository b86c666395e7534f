"""The Pulsar backend: the one typed interface handlers use, and the only place Pulsar errors are
turned into Kafka error codes.

It owns the Pulsar client (:mod:`.wire`: Pulsar's binary protocol spoken on the event loop, for data,
the group coordinator's topics and the fleet's registry), a :class:`~.partition_log.PartitionLog` per
partition in use (its writes, idempotence, readers and high watermark), the reader cache
(:mod:`.reader_cache`), the admin REST client (:mod:`.admin`) and a short-lived cache of partition
counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any


from .. import metrics
from ..config import Config
from ..mapping import offsets
from ..mapping.topics import Namespace, PulsarTopic, is_hidden, partition_topic, partitioned_topic
from ..protocol.errors import ErrorCode, KafkaError
from ..protocol.records import BatchHeader
from ..tasks import Periodic
from . import admin as admin_api, policies
from .errors import kafka_error_of
from .batch_codec import Entry, entry_of, kafka_entry_metadata
from .entry_index import EntryIndex, missing_entry_index
from .partition_log import Batch, PartitionLog
from .positions import OffsetLookups
from .reader import PartitionReader, ReadFailed
from .reader_cache import ReaderCache
from .wire.client import WireClient
from .wire.producer import WireProducer
from .wire.reader import WireReader
from .writer import PartitionWriter, WriteFailed

log = logging.getLogger(__name__)

PARTITION_CACHE_S = 5.0
PARTITION_CACHE_MAX = 10_000  # topics whose partition count is kept
ENTRY_INDEXES = 20_000  # partitions whose known entries are kept (a few KB each)
# Entries a new reader starts before its offset: a Pulsar client resends at most what was awaiting
# receipts, and a Kafka producer has at most 5 batches in flight per partition.
RESEND_LOOKBACK_ENTRIES = 16

class PulsarBackend(OffsetLookups):
    def __init__(self, config: Config, parent: "PulsarBackend | None" = None) -> None:
        self.config = config
        # A principal's backend (principals.py) has a parent: kop's own, which owns the system namespace.
        self.parent = parent
        # False when Pulsar refused this backend's token on its namespace (principals.py).
        self.namespace_authorized = True
        self.namespace = Namespace(config.pulsar.tenant, config.pulsar.namespace)
        self.system_namespace = Namespace(*config.pulsar.system_namespace.split("/", 1))
        self.entry_format = config.topics.entry_format
        self.contiguous = config.offsets.mode == "contiguous"  # Kafka offsets 0, 1, 2 (entry_index.py)
        # Pulsar's protocol spoken on the event loop (wire/connection.py says why not pulsar-client).
        self.wire = WireClient(config.pulsar.service_url, config.pulsar.auth_token, config.pulsar.operation_timeout_s)
        self.admin = admin_api.PulsarAdmin(config.pulsar.admin_url, config.pulsar.auth_token,
                                           config.pulsar.operation_timeout_s)
        self._partitions: dict[str, tuple[float, int]] = {}
        self._count_lookups: dict[str, asyncio.Future] = {}
        self._logs: dict[tuple[str, int], PartitionLog] = {}  # by (Kafka topic, partition)
        self._indexes: OrderedDict[str, EntryIndex] = OrderedDict()  # by Pulsar partition URL, LRU
        self.readers = ReaderCache(config.fetch.max_readers_per_partition, config.fetch.max_readers)
        self._idle_readers = Periodic("idle readers", max(config.fetch.reader_idle_s / 4, 1), self._close_idle_readers,
                                      logger=log)
        self._pid_producer: PartitionWriter | None = None
        self._broker_settings: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.parent is not None:  # the checks below were made by kop's own backend
            self._idle_readers.start()
            return
        runtime = self._broker_settings = await self.admin.runtime_configuration()
        max_entries = int(runtime.get("managedLedgerMaxEntriesPerLedger", "50000"))
        offsets.check_max_entries_per_ledger(max_entries)
        if self.contiguous:
            missing = missing_entry_index(runtime)
            if missing:
                raise RuntimeError(f"offsets.mode = \"contiguous\" needs Pulsar's broker entry index, and this "
                                   f"Pulsar lacks {missing}: set them on the brokers, or set offsets.mode = \"packed\" "
                                   f"(README, \"Offsets\")")
        await self.admin.ensure_namespace(self.system_namespace)
        self._idle_readers.start()

    async def close(self) -> None:
        await self._idle_readers.stop()
        for partition_log in list(self._logs.values()):
            await partition_log.close()
        await self.readers.close()
        await self.admin.close()
        await self.wire.close()

    def broker_settings(self) -> dict[str, str]:
        """Pulsar's runtime configuration as read at start by kop's own client (a principal's role
        may not read it)."""
        return self.parent.broker_settings() if self.parent is not None else self._broker_settings

    # -- topics ---------------------------------------------------------------------------------

    def partitioned(self, topic: str) -> PulsarTopic:
        return partitioned_topic(self.namespace, topic)

    async def partition_count(self, topic: str, fresh: bool = False, max_age_s: float | None = None) -> int:
        """Partitions of Kafka topic ``topic``; 0 if it does not exist.

        A count younger than PARTITION_CACHE_S is answered from the cache; up to twice that, it is
        answered while one refresh runs in the background. Requests that find no usable count share
        one lookup per topic: at thousands of produce requests a second, each expiry used to send
        one admin call per request (a tenth of kop's CPU). ``max_age_s``: a count older than that is
        looked up (shared) before answering; Metadata asks so, since a CreatePartitions served by
        another gateway or worker must show at once, as Kafka's brokers show it."""
        cached = self._partitions.get(topic)
        if cached and not fresh:
            age = time.monotonic() - cached[0]
            if max_age_s is not None and age > max_age_s:
                return await asyncio.shield(self._count_lookup(topic))
            if age < 2 * PARTITION_CACHE_S:
                if age >= PARTITION_CACHE_S:
                    self._count_lookup(topic)
                return cached[1]
        # fresh: a lookup of its own, since one already running may have started before a change
        return await asyncio.shield(self._count_lookup(topic, shared=not fresh))

    def _count_lookup(self, topic: str, shared: bool = True) -> asyncio.Future:
        running = self._count_lookups.get(topic) if shared else None
        if running is None:
            running = asyncio.ensure_future(self._look_up_count(topic))
            running.add_done_callback(lambda f: f.cancelled() or f.exception())  # a background one's error
            if shared:
                self._count_lookups[topic] = running
                running.add_done_callback(lambda _f: self._count_lookups.pop(topic, None))
        return running

    async def _look_up_count(self, topic: str) -> int:
        try:
            count = await self.admin.partition_count(self.partitioned(topic))
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        self._cache_count(topic, count)
        return count

    def _cache_count(self, topic: str, count: int) -> None:
        self._partitions.pop(topic, None)  # re-inserted last: the oldest entry goes first
        self._partitions[topic] = (time.monotonic(), count)
        if len(self._partitions) > PARTITION_CACHE_MAX:  # clients may ask about any number of names
            del self._partitions[next(iter(self._partitions))]

    async def create_topic(self, topic: str, partitions: int) -> None:
        try:
            await self.admin.create_partitioned_topic(self.partitioned(topic), partitions)
        except admin_api.Conflict as exc:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {topic!r} already exists") from exc
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        self._cache_count(topic, partitions)
        log.info("created topic %s: %d partitions, %s", topic, partitions, self.partitioned(topic).url)

    async def delete_topic(self, topic: str) -> None:
        count = await self.partition_count(topic, fresh=True)
        if count == 0:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {topic!r} does not exist")
        for partition in range(count):
            url = partition_topic(self.namespace, topic, partition).url
            await self._drop_partition(topic, partition, url)
        try:
            await self.admin.delete_partitioned_topic(self.partitioned(topic))
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        self._partitions.pop(topic, None)

    async def create_partitions(self, topic: str, partitions: int) -> None:
        try:
            await self.admin.update_partitions(self.partitioned(topic), partitions)
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        self._cache_count(topic, partitions)

    async def topic_configs(self, topic: str) -> dict[str, policies.ConfigEntry]:
        try:
            return await policies.describe(self, self.partitioned(topic))
        except Exception as exc:
            raise kafka_error_of(exc) from exc

    async def alter_topic_configs(self, topic: str, values: dict[str, object], reset: set[str]) -> None:
        try:
            await policies.apply(self, self.partitioned(topic), values, reset)
        except admin_api.AdminError as exc:
            if exc.status in (400, 412):  # Pulsar's own rules, e.g. retention size above the backlog quota
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"Pulsar refused the policy: {exc}") from exc
            raise kafka_error_of(exc) from exc
        except Exception as exc:
            raise kafka_error_of(exc) from exc

    async def list_topics(self) -> dict[str, int]:
        try:
            names = await self.admin.list_partitioned_topics(self.namespace)
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        topics = {}
        for full in names:
            local = full.rsplit("/", 1)[-1]
            if is_hidden(local):
                continue
            try:
                topics[local] = await self.partition_count(local)
            except KafkaError:
                continue
        return topics

    async def _drop_partition(self, topic: str, partition: int, url: str) -> None:
        partition_log = self._logs.pop((topic, partition), None)
        if partition_log is not None:
            await partition_log.close()
        self.readers.forget_partition(url)

    # -- partitions ---------------------------------------------------------------------------

    def cached_partition_count(self, topic: str) -> int | None:
        """The partition count if the cache has a usable one (see partition_count), without waiting."""
        cached = self._partitions.get(topic)
        if cached is None:
            return None
        age = time.monotonic() - cached[0]
        if age >= 2 * PARTITION_CACHE_S:
            return None
        if age >= PARTITION_CACHE_S:
            self._count_lookup(topic)
        return cached[1]

    def partition_log(self, topic: str, partition: int) -> PartitionLog:
        """The log of a partition (created on first use; synchronous, so a request takes its place in
        the partition's write order on arrival)."""
        found = self._logs.get((topic, partition))
        if found is None:
            found = self._logs[(topic, partition)] = PartitionLog(self, topic, partition)
        return found

    def discard_if_unused(self, partition_log: PartitionLog) -> None:
        """Forget a log that holds nothing: a Produce naming a partition that does not exist still
        took a place there (in arrival order, before the check), and a log per name a client ever
        sent would grow without bound (found by the fuzzer)."""
        key = (partition_log.topic, partition_log.partition)
        if partition_log.unused and self._logs.get(key) is partition_log:
            del self._logs[key]

    async def open_writer(self, url: str) -> PartitionWriter:
        try:
            producer = await WireProducer(self.wire, url).start()
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        return PartitionWriter(producer, url)

    def prepare_batch(self, header: BatchHeader, batch) -> Batch:
        """A checked Kafka batch, encoded as this backend's entry format stores it (raises KafkaError
        for records Kafka would refuse)."""
        return Batch(header, entry_of(header, batch, self.entry_format))

    def entry_index(self, topic: PulsarTopic) -> EntryIndex:
        """The contiguous-offset index of a Pulsar partition (offsets.mode contiguous), shared by its
        log, its readers and the cursor sync; at most ENTRY_INDEXES kept (least recently used go)."""
        found = self._indexes.pop(topic.url, None)
        if found is None:
            found = EntryIndex(self.wire, self.admin, topic)
        self._indexes[topic.url] = found
        if len(self._indexes) > ENTRY_INDEXES:
            self._indexes.popitem(last=False)
        return found

    async def cursor_target(self, topic: PulsarTopic, offset: int) -> tuple[int, int] | None:
        """Where a Kafka group's Pulsar subscription reads from for committed ``offset`` (the cursor
        sync): the entry holding it, or the next one. Packed offsets name their entry themselves."""
        if not self.contiguous:
            return None
        try:
            return await self.entry_index(topic).cursor_target(offset)
        except Exception as exc:
            raise kafka_error_of(exc) from exc

    async def log_end(self, topic: PulsarTopic) -> int:
        """A Pulsar partition's log end offset, contiguous offsets (the lag metric's, any namespace)."""
        last = await self.entry_index(topic).last()
        return last.end if last is not None else 0

    def high_watermark(self, topic: str, partition: int) -> int:
        return self.partition_log(topic, partition).high_watermark

    # -- fetch ----------------------------------------------------------------------------------

    async def reader_at(self, partition_log: PartitionLog, offset: int) -> PartitionReader:
        """A reader positioned at ``offset`` (cached one if possible), marked busy."""
        url = partition_log.url
        cached = self.readers.lend(url, offset)
        if cached is not None:
            return cached
        try:
            if partition_log.index is not None:
                position = await partition_log.index.position_of(offset)
                if position is None:  # nothing at or after it yet: wait at the end
                    last = await self.admin.last_message_id(partition_log.pulsar_topic)
                    position = (int(last["ledgerId"]), int(last["entryId"]) + 1)
            else:
                position = offsets.unpack(offset)[:2]
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        ledger, entry = position
        # A few entries early, so the reader has passed the batches a resend would repeat (resends.py);
        # poll() steps over everything before ``offset``.
        start = (ledger, max(entry - RESEND_LOOKBACK_ENTRIES, 0))
        try:
            raw = await WireReader(self.wire, url, start, self.config.fetch.reader_prefetch).start()
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        reader = PartitionReader(raw, url, offset, partition_log.index)
        self.readers.add(reader)
        return reader

    def release_reader(self, reader: PartitionReader, failed: bool = False) -> None:
        if failed:
            metrics.PULSAR_RECONNECTS.labels("reader").inc()
        self.readers.give_back(reader, failed)

    async def _close_idle_readers(self) -> None:
        self.readers.forget_idle(time.monotonic() - self.config.fetch.reader_idle_s)

    # -- producer ids ---------------------------------------------------------------------------

    async def new_producer_id(self) -> int:
        """A producer id unique across restarts and gateways: the Pulsar position of a message
        written for the purpose to ``<system namespace>/__kop_producer_ids``."""
        if self.parent is not None:
            return await self.parent.new_producer_id()
        if self._pid_producer is None or self._pid_producer.failed:
            url = PulsarTopic(self.system_namespace, "__kop_producer_ids").url
            self._pid_producer = await self.open_writer(url)
        try:
            appended = await self._pid_producer.send(Entry(kafka_entry_metadata(1, 0), b"pid", 1), 1)
        except WriteFailed as exc:
            raise kafka_error_of(exc) from exc
        return appended.base_offset >> offsets.BATCH_BITS


__all__ = ["PulsarBackend", "kafka_error_of", "ReadFailed", "WriteFailed"]
