"""Wiring: the Pulsar backend, the handler registry and the listener; graceful shutdown.

SIGTERM / SIGINT: stop accepting, let requests already received finish (up to 10 s), close the
connections, then close Pulsar producers and readers cleanly.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from dataclasses import replace

from . import metrics
from .backend import retention_check
from .backend.fleet import Fleet, Node, producer_name
from .backend.principals import PrincipalPool
from .backend.pulsar import PulsarBackend
from .backend.txn_storage import PulsarTxnStorage
from .config import Config
from .groups.coordinator import GroupCoordinator
from .groups.cursor_sync import CursorSync
from .groups.lag import GroupCollector, LagCollector
from .groups.ownership import Ownership
from .groups.store import OffsetsStore
from .handlers import api_versions
from .handlers.context import RequestContext
from .handlers.registry import load_all
from .mapping.placement import derive_node_id
from .server.connection import KafkaConnection, Wiring
from .server.limits import GatewayLimits
from .server.listeners import Listener, TlsServer, certificate_subject, listeners_of, server_ssl_context
from .server.pipeline import Pipeline
from .server.sasl_session import SaslSession
from .server.scram_users import ScramUsers
from .server.status_http import StatusServer
from .tasks import Periodic
from .txn.coordinator import TransactionCoordinator
from .txn.custody import PairedCustody
from .txn.view import TransactionView

log = logging.getLogger("kop")

DRAIN_TIMEOUT_S = 10.0
# Allocations between young collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 20_000


class Gateway:
    def __init__(self, config: Config, worker_index: int | None = None) -> None:
        self.config = config
        self.worker_index = worker_index  # one of several worker processes (workers.py), or None
        self.backend = PulsarBackend(config)
        self.handlers = load_all()
        # One route per API through the request pipeline (server/pipeline.py), shared by every connection.
        self.routes = Pipeline.standard(self._make_context).routes(self.handlers)
        self.connections: set[KafkaConnection] = set()
        s = config.server
        self.limits = GatewayLimits(s.max_connections, s.max_connections_per_address, s.queued_max_request_bytes)
        self._idle_s = s.connections_max_idle_ms / 1000
        # Kafka's connections.max.idle.ms, checked a few times per period: a connection goes at most a
        # quarter of it late.
        self._idle_sweeper = Periodic("idle connections", max(min(self._idle_s / 4, 60.0), 0.05), self._close_idle,
                                      logger=log) if self._idle_s > 0 else None
        self.listeners = listeners_of(config)
        self.servers: list[asyncio.base_events.Server] = []
        self._ssl_context = None
        # Built by start() once the listeners are bound: this gateway's node id comes from its
        # advertised address, and names its fleet registration and its __offsets producers.
        self.fleet: Fleet | None = None
        self.coordinator: GroupCoordinator | None = None
        self.txn_storage: PulsarTxnStorage | None = None
        self.txn_view: TransactionView | None = None
        self.transactions: TransactionCoordinator | None = None
        self._txn_timeouts: Periodic | None = None
        self.ownership: Ownership | None = None
        self.lag: LagCollector | None = None
        self._group_collector: GroupCollector | None = None
        self.principals = PrincipalPool(self.backend, config.sasl.max_principals)
        self.mechanisms = [m.strip() for m in config.sasl.mechanisms.split(",") if m.strip()]
        self.scram_users = ScramUsers(config.sasl.scram_credentials_file) if config.sasl.scram_credentials_file else None
        m = config.metrics
        metrics.configure(m.max_topic_labels, m.max_group_labels)
        self.serving = False
        metrics_port = m.listen_port
        if worker_index is not None and metrics_port:
            metrics_port += s.worker_port_offset + worker_index
        self.status = StatusServer(m.listen_host, metrics_port, lambda: self.serving,
                                   self.backend.admin.healthy) if m.enabled else None

    @property
    def server(self) -> asyncio.base_events.Server | None:
        return self.servers[0] if self.servers else None

    def _groups(self, node_id: int) -> GroupCoordinator:
        g = self.config.groups
        contiguous = self.backend.contiguous
        return GroupCoordinator(
            OffsetsStore(self.backend, partitions=g.offsets_partitions, producer_name=producer_name(node_id)),
            CursorSync(self.backend.admin, self.backend.namespace, prefix=g.subscription_prefix,
                       interval_s=g.cursor_sync_interval_s, locate=self.backend.cursor_target if contiguous else None),
            g, transactions=self.txn_view)

    async def _start_transactions(self, node_id: int) -> None:
        """``__transactions``, this gateway's view of it, and its transaction coordinator (kop/txn)."""
        t = self.config.transactions
        self.txn_storage = PulsarTxnStorage(self.backend, partitions=self.config.groups.offsets_partitions,
                                            producer_name=producer_name(node_id))
        await self.txn_storage.start()
        self.txn_view = TransactionView(self.backend, self.txn_storage.topic.url, self.txn_storage.partitions)
        await self.txn_view.start()
        self.transactions = TransactionCoordinator(self.txn_storage, self.txn_view, self.txn_storage.partitions,
                                                   t.max_timeout_ms)
        self._txn_timeouts = Periodic("transaction timeouts", t.timeout_check_interval_s,
                                      self.transactions.abort_expired, logger=log)

    def _make_context(self, header, peer: str, session, listener) -> RequestContext:
        backend = session.backend if session is not None else self.backend
        return RequestContext(header, backend, self.config, peer, self.coordinator, self.fleet, self.ownership,
                              session, listener, self.transactions, self.txn_view)

    def _make_session(self, listener: Listener):
        def make(peer: str, transport) -> SaslSession:
            subject = certificate_subject(transport.get_extra_info("peercert")) if listener.tls else None
            if subject:
                log.info("%s connected to %s with client certificate %s", peer, listener.name, subject)
            return SaslSession(required=listener.sasl, mechanisms=self.mechanisms, pool=self.principals,
                               backend=self.backend, default_tenant=self.config.pulsar.tenant,
                               default_namespace=self.config.pulsar.namespace, peer=peer,
                               scram_users=self.scram_users)
        return make

    def _protocol_for(self, listener: Listener):
        s = self.config.server
        wiring = Wiring(self.routes, api_versions.fallback_response, s.max_frame_size, s.max_inflight_requests,
                        self.limits, listener, self._make_session(listener), on_open=self.connections.add,
                        on_close=self.connections.discard)
        return lambda: KafkaConnection(wiring)

    async def _bind(self) -> list[tuple[Listener, int]]:
        """Every listener's server socket. A worker (workers.py) binds each listener's port shared with
        the other workers, and a port of its own (the port + worker_port_offset + its index), which
        it advertises: a client's later connections reach this very worker."""
        self._ssl_context = server_ssl_context(self.config) if any(li.tls for li in self.listeners) else None
        bound = []
        offset = None if self.worker_index is None else self.config.server.worker_port_offset + self.worker_index
        for listener in self.listeners:
            if offset is not None:
                self.servers.append(await self._listen(listener, listener.port, shared=True))
                own = await self._listen(listener, listener.port + offset)
                self.servers.append(own)
                port = own.sockets[0].getsockname()[1]
                advertised = (listener.advertised_port or listener.port) + offset
            else:
                server = await self._listen(listener, listener.port)
                self.servers.append(server)
                port = server.sockets[0].getsockname()[1]
                advertised = listener.advertised_port or port
            self.listeners[self.listeners.index(listener)] = listener = replace(
                listener, port=port, advertised_port=advertised)
            bound.append((listener, port))
        return bound

    async def _listen(self, listener: Listener, port: int, shared: bool = False):
        if listener.tls:
            return TlsServer(self._protocol_for(listener), listener.host, port, self._ssl_context, reuse_port=shared)
        return await asyncio.get_running_loop().create_server(
            self._protocol_for(listener), listener.host, port, reuse_address=True, reuse_port=shared or None,
            backlog=1024, start_serving=False)

    async def start(self) -> None:
        """Bind, join the fleet, load the groups this gateway coordinates, then serve."""
        if self.status is not None:
            await self.status.start()  # first: /health answers while Pulsar is reached; a taken port fails at once
        await self.backend.start()
        await retention_check.warn_once(self.backend.admin, self.backend.namespace, self.backend.broker_settings())
        s, c, m = self.config.server, self.config.cluster, self.config.metrics
        bound = await self._bind()
        primary, port = bound[0]
        advertised_port = primary.advertised_port
        node_id = s.node_id if s.node_id >= 0 else derive_node_id(s.advertised_host, advertised_port)
        self.fleet = Fleet(self.backend.wire, self.backend.admin, self.backend.system_namespace,
                           Node(node_id, s.advertised_host, advertised_port,
                                tuple((li.name, li.advertised_host, li.advertised_port) for li in self.listeners)))
        await self._start_transactions(node_id)
        self.coordinator = coordinator = self._groups(node_id)
        # __offsets partition n and __transactions partition n are held together (kop/txn/custody.py).
        self.ownership = Ownership(self.fleet, PairedCustody(coordinator.custody, self.transactions),
                                   self.backend.admin, refresh_interval_s=c.refresh_interval_s,
                                   handover_delay_s=c.handover_delay_s)
        if self.status is not None:
            self._group_collector = GroupCollector(coordinator)
            metrics.REGISTRY.register(self._group_collector)
            if m.lag_interval_s > 0:
                self.lag = LagCollector(coordinator, self.backend.admin, m.lag_interval_s, m.lag_max_partitions,
                                        m.lag_precise, log_end=self.backend.log_end if self.backend.contiguous else None)
        await coordinator.start()
        await self.fleet.start()
        await self.ownership.start()
        for server in self.servers:
            await server.start_serving()
        self.serving = True
        if self.lag is not None:
            self.lag.start()
        if self._idle_sweeper is not None:
            self._idle_sweeper.start()
        self._txn_timeouts.start()
        for listener in self.listeners[1:]:
            log.info("listener %s on %s:%d (advertised %s:%d)", listener.name, listener.host, listener.port,
                     listener.advertised_host, listener.advertised_port)
        log.info("kop listening on %s:%d (%s, advertised %s:%d, node %d), Pulsar %s, namespace %s/%s, entry format %s; "
                 "coordinating %d of %d __offsets partitions", s.listen_host, port, primary.name, s.advertised_host,
                 advertised_port, node_id, self.config.pulsar.service_url, self.config.pulsar.tenant,
                 self.config.pulsar.namespace, self.config.topics.entry_format, len(coordinator.custody.loaded),
                 coordinator.custody.partitions)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def _close_idle(self) -> None:
        """Close the connections idle for connections.max.idle.ms (server/limits.py)."""
        now = time.monotonic()
        for conn in list(self.connections):
            idle = conn.idle_for(now)
            if idle >= self._idle_s:
                conn.close_idle(idle)

    async def stop(self) -> None:
        self.serving = False
        if self._idle_sweeper is not None:
            await self._idle_sweeper.stop()
        if self.lag is not None:
            await self.lag.close()
        for server in self.servers:
            server.close()
        log.info("stopping: %d connections, draining in-flight requests", len(self.connections))
        await asyncio.gather(*(c.drain_pending(DRAIN_TIMEOUT_S) for c in list(self.connections)))
        for conn in list(self.connections):
            conn.close()
        if self.ownership is not None:
            await self.ownership.close()
        if self._txn_timeouts is not None:
            await self._txn_timeouts.stop()
        if self.transactions is not None:
            for partition in sorted(self.transactions.owned):
                await self.transactions.release(partition)
        if self.coordinator is not None:
            await self.coordinator.close()
        if self.txn_view is not None:
            await self.txn_view.close()
        if self.txn_storage is not None:
            await self.txn_storage.close()
        if self.fleet is not None:
            await self.fleet.close()
        await self.principals.close()
        await self.backend.close()
        if self.status is not None:
            await self.status.close()
        if self._group_collector is not None:
            metrics.REGISTRY.unregister(self._group_collector)
        log.info("stopped")


def raise_file_limit() -> None:
    """Open files up to the hard limit: every client connection, Pulsar connection and reader is a
    file descriptor, and a soft limit of 1,024 (a common default) would refuse the 1,000th client."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
    except (ImportError, ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit: %s", exc)


async def serve(config: Config, worker_index: int | None = None) -> None:
    raise_file_limit()
    gateway = Gateway(config, worker_index)
    await gateway.start()
    # What start-up allocated (modules, codecs, config) lives as long as the process: out of the
    # collector's way, and young collections rarer. Every request allocates tasks and futures, and
    # the collector was 8% of kop's CPU under thousands of small requests a second.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gateway.stop()


def run(config: Config, worker_index: int | None = None) -> None:
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # uvloop is optional; the stdlib loop works, slower
        runner = asyncio.run
    runner(serve(config, worker_index))
