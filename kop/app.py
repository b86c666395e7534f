"""Wiring: the Pulsar backend, the handler registry and the listener; graceful shutdown.

SIGTERM / SIGINT: stop accepting, let requests already received finish (up to 10 s), close the
connections, then close Pulsar producers and readers cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from .backend.fleet import Fleet, Node, producer_name
from .backend.pulsar import PulsarBackend
from .config import Config
from .groups.coordinator import GroupCoordinator
from .groups.cursor_sync import CursorSync
from .groups.ownership import Ownership
from .groups.store import OffsetsStore
from .handlers import api_versions
from .handlers.context import RequestContext
from .handlers.registry import load_all
from .mapping.placement import derive_node_id
from .server.connection import KafkaConnection

log = logging.getLogger("kop")

DRAIN_TIMEOUT_S = 10.0


class Gateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.backend = PulsarBackend(config)
        g = config.groups
        self.coordinator = GroupCoordinator(
            OffsetsStore(self.backend, partitions=g.offsets_partitions),
            CursorSync(self.backend.admin, self.backend.namespace, prefix=g.subscription_prefix,
                       interval_s=g.cursor_sync_interval_s), g)
        self.handlers = load_all()
        self.connections: set[KafkaConnection] = set()
        self.server: asyncio.base_events.Server | None = None
        self.fleet: Fleet | None = None
        self.ownership: Ownership | None = None

    def _make_context(self, header, peer: str) -> RequestContext:
        return RequestContext(header, self.backend, self.config, peer, self.coordinator, self.fleet, self.ownership)

    def _protocol(self) -> KafkaConnection:
        conn = KafkaConnection(handlers=self.handlers, make_context=self._make_context,
                               max_frame_size=self.config.server.max_frame_size,
                               max_inflight=self.config.server.max_inflight_requests,
                               fallback_api_versions=api_versions.fallback_response,
                               on_close=self.connections.discard)
        self.connections.add(conn)
        return conn

    async def start(self) -> None:
        """Bind, join the fleet, load the groups this gateway coordinates, then serve."""
        await self.backend.start()
        await self.coordinator.start()
        s, c = self.config.server, self.config.cluster
        self.server = await asyncio.get_running_loop().create_server(
            self._protocol, s.listen_host, s.listen_port, reuse_address=True, backlog=1024, start_serving=False)
        port = self.server.sockets[0].getsockname()[1]
        advertised_port = s.advertised_port or port
        node_id = s.node_id if s.node_id >= 0 else derive_node_id(s.advertised_host, advertised_port)
        self.fleet = Fleet(self.backend.client, self.backend.admin, self.backend.system_namespace,
                           Node(node_id, s.advertised_host, advertised_port))
        self.coordinator.store.producer_name = producer_name(node_id)
        await self.fleet.start()
        self.ownership = Ownership(self.fleet, self.coordinator, self.backend.admin,
                                   refresh_interval_s=c.refresh_interval_s, handover_delay_s=c.handover_delay_s)
        await self.ownership.start()
        await self.coordinator.cursor_sync.start()
        await self.server.start_serving()
        log.info("kop listening on %s:%d (advertised %s:%d, node %d), Pulsar %s, namespace %s/%s, entry format %s; "
                 "coordinating %d of %d __offsets partitions", s.listen_host, port, s.advertised_host,
                 advertised_port, node_id, self.config.pulsar.service_url, self.config.pulsar.tenant,
                 self.config.pulsar.namespace, self.config.topics.entry_format, len(self.coordinator.loaded),
                 self.coordinator.store.partitions)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        log.info("stopping: %d connections, draining in-flight requests", len(self.connections))
        await asyncio.gather(*(c.drain_pending(DRAIN_TIMEOUT_S) for c in list(self.connections)))
        for conn in list(self.connections):
            conn.close()
        if self.ownership is not None:
            await self.ownership.close()
        await self.coordinator.close()
        if self.fleet is not None:
            await self.fleet.close()
        await self.backend.close()
        log.info("stopped")


async def serve(config: Config) -> None:
    gateway = Gateway(config)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gateway.stop()


def run(config: Config) -> None:
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # uvloop is optional; the stdlib loop works, slower
        runner = asyncio.run
    runner(serve(config))
