"""The fleet: which kop gateways are alive, as Pulsar sees them.

Gateways sharing a Pulsar cluster and a system namespace form one Kafka cluster. Each announces
itself by keeping one producer open on the non-partitioned topic
``persistent://<system namespace>/__kop_gateways``:

- producer name ``kop-gateway-<node id>``; Pulsar refuses a second producer of the same name on a
  topic (ProducerBusy), so two live gateways can never share a node id;
- producer properties ``host`` and ``port`` (the advertised address of its primary listener),
  ``listener.<NAME>`` = ``host:port`` for every listener (server/listeners.py), ``version`` and
  ``started`` (ms since the epoch), which the topic's stats show as the publisher's ``metadata``.

The live fleet is the topic's publisher list (``GET .../__kop_gateways/stats``), read every
``cluster.refresh_interval_s``. Nothing is ever written to the topic. A gateway that stops closes
its producer; one that crashes (kill -9, a lost host) drops its TCP connection, and the broker
removes its producer when it notices: at once for a killed process (the kernel closes the socket),
within Pulsar's keep-alive (``keepAliveIntervalSeconds``, 30 s by default) for a vanished host.

No home-made consensus: liveness is Pulsar's view of connections, and the decisions built on it
(groups/ownership.py) are taken by Pulsar too (exclusive producers), so gateways that briefly
disagree about the fleet can only disagree about who *should* own something, never about who does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .. import __version__
from ..mapping.topics import PulsarTopic
from ..tasks import close_within
from . import admin as admin_api
from .wire.client import WireClient
from .wire.errors import WireError
from .wire.producer import WireProducer

log = logging.getLogger(__name__)

REGISTRY_TOPIC = "__kop_gateways"
PRODUCER_PREFIX = "kop-gateway-"


class FleetError(Exception):
    """This gateway cannot join the fleet (its node id is taken, Pulsar refuses the registration)."""


@dataclass(frozen=True, slots=True, order=True)
class Node:
    node_id: int
    host: str
    port: int
    listeners: tuple[tuple[str, str, int], ...] = ()  # (name, advertised host, port)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def address_for(self, listener: str | None) -> tuple[str, int] | None:
        """Where a client of listener ``listener`` reaches this gateway (None: it has no such listener)."""
        if listener is None or not self.listeners:
            return self.host, self.port
        for name, host, port in self.listeners:
            if name == listener:
                return host, port
        return None


def producer_name(node_id: int) -> str:
    return f"{PRODUCER_PREFIX}{node_id}"


def node_id_of(producer: str) -> int | None:
    """The node id in a producer name of ours, or None for anybody else's producer."""
    if not producer.startswith(PRODUCER_PREFIX):
        return None
    tail = producer[len(PRODUCER_PREFIX):]
    return int(tail) if tail.isdigit() else None


def node_of_publisher(publisher: dict) -> Node | None:
    node_id = node_id_of(str(publisher.get("producerName") or ""))
    meta = publisher.get("metadata") or {}
    try:
        host, port = str(meta["host"]), int(meta["port"])
    except (KeyError, TypeError, ValueError):
        return None
    if node_id is None or not host or not 0 < port < 65536:
        return None
    listeners = []
    for key, value in meta.items():
        if str(key).startswith("listener."):
            l_host, _, l_port = str(value).rpartition(":")
            if l_host and l_port.isdigit() and 0 < int(l_port) < 65536:
                listeners.append((str(key)[len("listener."):], l_host, int(l_port)))
    return Node(node_id, host, port, tuple(sorted(listeners)))


class Fleet:
    """This gateway's registration and its view of the live fleet (module docstring)."""

    def __init__(self, wire: WireClient, admin: admin_api.PulsarAdmin, namespace, me: Node) -> None:
        self.me = me
        self.topic = PulsarTopic(namespace, REGISTRY_TOPIC)
        self._wire = wire
        self._admin = admin
        self._producer: WireProducer | None = None
        self.live: dict[int, Node] = {me.node_id: me}
        self._since: dict[int, float] = {me.node_id: time.monotonic()}  # first seen in the current run
        self._refresh_failed = False

    async def start(self) -> None:
        try:
            await self._admin.create_topic(self.topic)
        except admin_api.Conflict:
            pass
        except admin_api.AdminError as exc:
            raise FleetError(f"creating {self.topic.url}: {exc}") from exc
        await self._register()
        await self.refresh()
        log.info("joined the fleet as node %d (%s); live: %s", self.me.node_id, self.me.address,
                 ", ".join(f"{n.node_id}@{n.address}" for n in self.nodes()))

    async def _register(self) -> None:
        properties = {"host": self.me.host, "port": str(self.me.port)}
        for name, host, port in self.me.listeners:
            properties[f"listener.{name}"] = f"{host}:{port}"
        properties.update(version=__version__, started=str(int(time.time() * 1000)))
        producer = WireProducer(self._wire, self.topic.url, name=producer_name(self.me.node_id), metadata=properties)
        try:
            self._producer = await producer.start()
        except WireError as exc:
            if exc.name == "ProducerBusy":
                other = await self._holder_of(self.me.node_id)
                raise FleetError(f"node id {self.me.node_id} is already used by a live gateway{other}; "
                                 f"give this one another server.node_id (or another advertised address)") from exc
            raise FleetError(f"registering on {self.topic.url}: {exc}") from exc

    async def _holder_of(self, node_id: int) -> str:
        try:
            for publisher in await self._admin.publishers(self.topic):
                node = node_of_publisher(publisher)
                if node is not None and node.node_id == node_id:
                    return f" at {node.address} (connected from {publisher.get('address')})"
        except admin_api.AdminError:
            pass
        return ""

    async def refresh(self) -> dict[int, Node]:
        """Read the live fleet from Pulsar; on failure keep the last view (this gateway always in it).
        A registration Pulsar dropped for good (it could not register again) is made anew."""
        if self._producer is not None and self._producer.failed is not None:
            log.warning("fleet: the registration on %s was lost (%s); registering again", self.topic.url,
                        self._producer.failed)
            try:
                await self._register()
            except FleetError as exc:
                log.warning("fleet: %s", exc)
        try:
            publishers = await self._admin.publishers(self.topic)
        except admin_api.AdminError as exc:
            if not self._refresh_failed:
                log.warning("fleet: reading %s failed (%s); keeping the last view", self.topic.url, exc)
            self._refresh_failed = True
            return self.live
        if self._refresh_failed:
            log.info("fleet: %s readable again", self.topic.url)
        self._refresh_failed = False
        live = {self.me.node_id: self.me}
        for publisher in publishers:
            node = node_of_publisher(publisher)
            if node is not None and node.node_id != self.me.node_id:
                live[node.node_id] = node
        now = time.monotonic()
        joined = [n for i, n in live.items() if i not in self.live]
        left = [n for i, n in self.live.items() if i not in live]
        for node in joined:
            self._since[node.node_id] = now
            log.info("fleet: gateway %d at %s is live", node.node_id, node.address)
        for node in left:
            self._since.pop(node.node_id, None)
            log.info("fleet: gateway %d at %s is gone", node.node_id, node.address)
        self.live = live
        return live

    def nodes(self) -> list[Node]:
        return sorted(self.live.values())

    def node(self, node_id: int) -> Node | None:
        return self.live.get(node_id)

    def live_for(self, node_id: int) -> float:
        """Seconds ``node_id`` has been continuously live in this gateway's view (0 if it is not)."""
        since = self._since.get(node_id)
        return 0.0 if since is None or node_id not in self.live else time.monotonic() - since

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await close_within(producer.close(), "closing the fleet registration", logger=log)
