"""What the transaction coordinator (kop/txn/coordinator.py) asks of Pulsar, in one place:

- ``__transactions``, a partitioned topic of the system namespace, one :class:`ExclusiveLog` per
  partition (Pulsar lets one gateway write each, like ``__offsets``), compacted by the broker;
- producer ids (the backend's allocator);
- a partition's *start bound* when it joins a transaction: its log end offset then;
- transaction markers, written through the partition's log like any batch (after everything this
  gateway wrote there before), as ``kafka``-format entries in either entry format.

Transactions of a SASL principal's namespace are scoped to it; their markers are written with kop's
own Pulsar client, through a backend of that namespace kept here (kop's client writes ``__offsets``
and moves subscriptions in every namespace already).
"""

from __future__ import annotations

import dataclasses
import logging
import time

from ..mapping.topics import Namespace, PulsarTopic
from ..protocol.control import Marker
from ..protocol.errors import ErrorCode, KafkaError
from . import admin as admin_api
from .batch_codec import marker_entry
from .errors import kafka_error_of
from .exclusive_log import ExclusiveLog
from .partition_log import Batch

log = logging.getLogger(__name__)

COMPACTION_THRESHOLD_BYTES = 1024 * 1024


class PulsarTxnStorage:
    def __init__(self, backend, topic_name: str = "__transactions", partitions: int = 8,
                 producer_name: str = "") -> None:
        self.backend = backend
        self.topic = PulsarTopic(backend.system_namespace, topic_name)
        self.partitions = partitions
        self.producer_name = producer_name
        self._logs: dict[int, ExclusiveLog] = {}
        self._namespaces: dict[str, object] = {}

    def partition_url(self, partition: int) -> str:
        return f"{self.topic.url}-partition-{partition}"

    async def start(self) -> None:
        """Create ``__transactions`` (or use the one there; its partition count wins)."""
        admin = self.backend.admin
        try:
            await admin.create_partitioned_topic(self.topic, self.partitions)
        except admin_api.Conflict:
            existing = await admin.partition_count(self.topic)
            if existing >= 1 and existing != self.partitions:
                log.warning("%s has %d partitions, not %d; using %d", self.topic.url, existing, self.partitions,
                            existing)
                self.partitions = existing
        try:
            await admin.set_compaction_threshold(self.topic, COMPACTION_THRESHOLD_BYTES)
        except admin_api.AdminError as exc:
            if exc.status not in (405, 412):
                raise
            await admin.set_namespace_compaction_threshold(self.topic.namespace, COMPACTION_THRESHOLD_BYTES)

    async def close(self) -> None:
        for partition in list(self._logs):
            await self.release(partition)
        for backend in self._namespaces.values():
            await backend.close()

    # -- __transactions ---------------------------------------------------------------------------

    async def acquire(self, partition: int) -> bool:
        lane = self._logs.get(partition)
        if lane is None:
            lane = self._logs[partition] = ExclusiveLog(self.backend.wire, self.partition_url(partition),
                                                        self.producer_name)
        try:
            return await lane.acquire()
        except Exception as exc:
            raise kafka_error_of(exc) from exc

    async def release(self, partition: int) -> None:
        lane = self._logs.pop(partition, None)
        if lane is not None:
            await lane.release()

    def held(self, partition: int) -> bool:
        lane = self._logs.get(partition)
        return lane is not None and lane.held

    async def append(self, partition: int, records: list[tuple[str, bytes | None]]) -> None:
        lane = self._logs.get(partition)
        if lane is None or not lane.held:
            raise KafkaError(ErrorCode.NOT_COORDINATOR, f"__transactions partition {partition} is not held here")
        await lane.room(len(records))
        futures = [lane.append(key, value) for key, value in records]
        for future in futures:
            try:
                await future
            except Exception as exc:
                raise kafka_error_of(exc) from exc

    # -- the partitions of transactions -------------------------------------------------------------

    async def new_producer_id(self) -> int:
        return await self.backend.new_producer_id()

    async def start_bound(self, key: tuple[str, str, int]) -> int:
        backend = await self._backend_of(key[0])
        topic, partition = key[1], key[2]
        if partition >= await backend.partition_count(topic):
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{partition} does not exist")
        return await backend.latest_offset(topic, partition)

    async def write_marker(self, key: tuple[str, str, int], marker: Marker) -> int:
        backend = await self._backend_of(key[0])
        header, entry = marker_entry(marker, int(time.time() * 1000))
        code, offset, message = await backend.partition_log(key[1], key[2]).append(Batch(header, entry, marker=True))
        if code != ErrorCode.NONE:
            raise KafkaError(ErrorCode(code), message)
        return offset

    async def _backend_of(self, namespace: str):
        if namespace == self.backend.namespace.path:
            return self.backend
        found = self._namespaces.get(namespace)
        if found is None:
            from .pulsar import PulsarBackend
            tenant, _, name = namespace.partition("/")
            cfg = self.backend.config
            config = dataclasses.replace(cfg, pulsar=dataclasses.replace(cfg.pulsar, tenant=tenant, namespace=name))
            found = PulsarBackend(config, parent=self.backend)
            await found.start()
            self._namespaces[namespace] = found
        return found


__all__ = ["PulsarTxnStorage", "Namespace"]
