"""The Pulsar backend: the one typed interface handlers use, and the only place Pulsar errors are
turned into Kafka error codes.

It owns the Pulsar client, one producer per partition in use (:mod:`.writer`), readers (:mod:`.reader`,
cached by :mod:`.reader_cache`), the admin REST client (:mod:`.admin`) and a short-lived cache of
partition counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import _pulsar
import pulsar

from .. import metrics
from ..config import Config
from ..mapping import offsets
from ..mapping.topics import Namespace, PulsarTopic, is_hidden, partition_topic, partitioned_topic
from ..protocol.errors import ErrorCode, KafkaError
from . import admin as admin_api, policies, producer_recovery
from .errors import kafka_error_of
from .idempotence import ProducerTable
from .positions import OffsetLookups
from .reader import PartitionReader, ReadFailed
from .reader_cache import ReaderCache
from .plumbing import call_async, producer_conf, pulsar_client, reader_conf
from .writer import OrderGate, PartitionWriter, WriteFailed

log = logging.getLogger(__name__)

PARTITION_CACHE_S = 5.0
PARTITION_CACHE_MAX = 10_000  # topics whose partition count is kept
# Entries a new reader starts before its offset: a Pulsar client resends at most what was awaiting
# receipts, and a Kafka producer has at most 5 batches in flight per partition.
RESEND_LOOKBACK_ENTRIES = 16

@dataclass(slots=True)
class PartitionState:
    gate: OrderGate
    producers: ProducerTable
    writer: PartitionWriter | None = None
    writer_starting: asyncio.Future | None = None
    high_watermark: int = -1
    producers_recovered: bool = False  # the idempotent batches at the partition's end are in `producers`
    recovering: asyncio.Future | None = None


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
        kwargs: dict[str, Any] = dict(operation_timeout_seconds=int(config.pulsar.operation_timeout_s),
                                      io_threads=config.pulsar.io_threads, message_listener_threads=1,
                                      # Its own warnings, straight to stdout in its own format. Not
                                      # through Python logging: a C++ I/O thread then waits for the
                                      # GIL inside a logging call while holding a producer's mutex,
                                      # and the loop thread, holding the GIL, waits for that mutex in
                                      # send/flush: a deadlock (seen under the fuzzer, py-spy dump).
                                      logger=pulsar.ConsoleLogger(_pulsar.LoggerLevel.Warn))
        if config.pulsar.auth_token:
            kwargs["authentication"] = pulsar.AuthenticationToken(config.pulsar.auth_token)
        self.client = pulsar_client(config.pulsar.service_url, kwargs)
        self.admin = admin_api.PulsarAdmin(config.pulsar.admin_url, config.pulsar.auth_token,
                                           config.pulsar.operation_timeout_s)
        self._partitions: dict[str, tuple[float, int]] = {}
        self._count_lookups: dict[str, asyncio.Future] = {}
        self._states: dict[str, PartitionState] = {}
        self.readers = ReaderCache(config.fetch.max_readers_per_partition, config.fetch.max_readers)
        self._janitor: asyncio.Task | None = None
        self._pid_producer: PartitionWriter | None = None
        self._broker_settings: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.parent is not None:  # the checks below were made by kop's own backend
            self._janitor = asyncio.create_task(self._close_idle_readers())
            return
        runtime = self._broker_settings = await self.admin.runtime_configuration()
        max_entries = int(runtime.get("managedLedgerMaxEntriesPerLedger", "50000"))
        offsets.check_max_entries_per_ledger(max_entries)
        await self.admin.ensure_namespace(self.system_namespace)
        self._janitor = asyncio.create_task(self._close_idle_readers())

    async def close(self) -> None:
        if self._janitor:
            self._janitor.cancel()
        for state in self._states.values():
            if state.writer is not None:
                await state.writer.close()
        await self.readers.close()
        await self.admin.close()
        await asyncio.get_running_loop().run_in_executor(None, self.client.close)

    def broker_settings(self) -> dict[str, str]:
        """Pulsar's runtime configuration as read at start by kop's own client (a principal's role
        may not read it)."""
        return self.parent.broker_settings() if self.parent is not None else self._broker_settings

    # -- topics ---------------------------------------------------------------------------------

    def partitioned(self, topic: str) -> PulsarTopic:
        return partitioned_topic(self.namespace, topic)

    async def partition_count(self, topic: str, fresh: bool = False) -> int:
        """Partitions of Kafka topic ``topic``; 0 if it does not exist.

        A count younger than PARTITION_CACHE_S is answered from the cache; up to twice that, it is
        answered while one refresh runs in the background. Requests that find no usable count share
        one lookup per topic: at thousands of produce requests a second, each expiry used to send
        one admin call per request (a tenth of kop's CPU)."""
        cached = self._partitions.get(topic)
        if cached and not fresh:
            age = time.monotonic() - cached[0]
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
            await self._drop_partition(url)
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

    async def _drop_partition(self, url: str) -> None:
        state = self._states.pop(url, None)
        if state and state.writer:
            await state.writer.close()
        self.readers.forget_partition(url)

    # -- produce --------------------------------------------------------------------------------

    def partition_state(self, topic: str, partition: int) -> tuple[str, PartitionState]:
        """Synchronous, so a request takes its place in the partition's order on arrival."""
        url = partition_topic(self.namespace, topic, partition).url
        state = self._states.get(url)
        if state is None:
            state = self._states[url] = PartitionState(OrderGate(), ProducerTable())
        return url, state

    def discard_unused_state(self, url: str) -> None:
        """Forget a partition's state that holds nothing: a Produce naming a partition that does not
        exist still took a ticket there (in arrival order, before the check), and a state per name a
        client ever sent would grow without bound (found by the fuzzer)."""
        state = self._states.get(url)
        if (state is not None and state.writer is None and state.writer_starting is None and state.gate.idle
                and not len(state.producers) and state.recovering is None):
            del self._states[url]

    async def writer(self, url: str, state: PartitionState) -> PartitionWriter:
        if state.writer is not None and not state.writer.failed:
            return state.writer
        if state.writer_starting is None:
            state.writer_starting = asyncio.ensure_future(self._open_writer(url, state))
        try:
            return await asyncio.shield(state.writer_starting)
        finally:
            if state.writer_starting is not None and state.writer_starting.done():
                state.writer_starting = None

    async def _open_writer(self, url: str, state: PartitionState) -> PartitionWriter:
        old = state.writer
        state.writer = None
        if old is not None:
            metrics.PULSAR_RECONNECTS.labels("producer").inc()
            asyncio.ensure_future(old.close())
        try:
            producer = await call_async(self.client.create_producer_async, url,
                                         producer_conf(self.entry_format))
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        state.writer = PartitionWriter(producer, self.entry_format, url)
        return state.writer

    async def recover_producers(self, topic: str, partition: int, state: PartitionState) -> None:
        """Once per partition state, before its first idempotent write (producer_recovery.py)."""
        if state.recovering is None:
            state.recovering = asyncio.ensure_future(producer_recovery.recover(
                self.client, self.admin, partition_topic(self.namespace, topic, partition), state.producers,
                self.config.pulsar.operation_timeout_s))
        recovering = state.recovering
        try:
            await asyncio.shield(recovering)
            state.producers_recovered = True
        finally:
            if recovering.done() and (recovering.cancelled() or recovering.exception() is not None):
                state.recovering = None  # the next request tries again

    def note_written(self, state: PartitionState, end_offset: int) -> None:
        state.high_watermark = max(state.high_watermark, end_offset)

    def high_watermark(self, topic: str, partition: int) -> int:
        _, state = self.partition_state(topic, partition)
        return state.high_watermark

    # -- fetch ----------------------------------------------------------------------------------

    async def reader_at(self, topic: str, partition: int, offset: int) -> PartitionReader:
        """A reader positioned at ``offset`` (cached one if possible), marked busy."""
        url = partition_topic(self.namespace, topic, partition).url
        cached = self.readers.lend(url, offset)
        if cached is not None:
            return cached
        ledger, entry, _ = offsets.unpack(offset)
        # A few entries early, so the reader has passed the batches a resend would repeat (resends.py);
        # poll() steps over everything before ``offset``.
        start = pulsar.MessageId(-1, ledger, max(entry - RESEND_LOOKBACK_ENTRIES, 0), -1)._msg_id
        conf = reader_conf(inclusive=True, prefetch=self.config.fetch.reader_prefetch)
        try:
            raw = await call_async(self.client.create_reader_async, url, start, conf)
        except Exception as exc:
            raise kafka_error_of(exc) from exc
        reader = PartitionReader(raw, url, offset)
        self.readers.add(reader)
        return reader

    def release_reader(self, reader: PartitionReader, failed: bool = False) -> None:
        if failed:
            metrics.PULSAR_RECONNECTS.labels("reader").inc()
        self.readers.give_back(reader, failed)

    async def _close_idle_readers(self) -> None:
        while True:
            await asyncio.sleep(max(self.config.fetch.reader_idle_s / 4, 1))
            self.readers.forget_idle(time.monotonic() - self.config.fetch.reader_idle_s)

    # -- producer ids ---------------------------------------------------------------------------

    async def new_producer_id(self) -> int:
        """A producer id unique across restarts and gateways: the Pulsar position of a message
        written for the purpose to ``<system namespace>/__kop_producer_ids``."""
        if self.parent is not None:
            return await self.parent.new_producer_id()
        if self._pid_producer is None or self._pid_producer.failed:
            url = PulsarTopic(self.system_namespace, "__kop_producer_ids").url
            try:
                producer = await call_async(self.client.create_producer_async, url, producer_conf("kafka"))
            except Exception as exc:
                raise kafka_error_of(exc) from exc
            self._pid_producer = PartitionWriter(producer, "kafka", url)
        try:
            appended = await self._pid_producer.append(records=None, batch=b"pid", records_count=1,
                                                       max_timestamp=0, size=3)
        except WriteFailed as exc:
            raise kafka_error_of(exc) from exc
        return appended.base_offset >> offsets.BATCH_BITS


__all__ = ["PulsarBackend", "kafka_error_of", "ReadFailed", "WriteFailed"]
