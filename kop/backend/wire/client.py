"""The wire client: connections to Pulsar brokers, one per broker, and topic lookups.

``pulsar://host:port`` or ``pulsar+ssl://host:port`` is the service URL. A topic is looked up on the
service URL's broker (binary lookup, following redirects as Pulsar's clients do); the broker that
owns it is then reached through a connection of its own, shared by every producer and reader on
that broker. When the lookup says so (a Pulsar proxy in front of the brokers), the connection goes to
the service URL and names the owning broker in its CONNECT.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from urllib.parse import urlparse

from . import commands as cmd
from .connection import Connection
from .errors import WireError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 20


class WireClient:
    def __init__(self, service_url: str, auth_token: str = "", operation_timeout_s: float = 30.0,
                 tls_trust_file: str = "", tls_allow_insecure: bool = False) -> None:
        parsed = urlparse(service_url)
        if parsed.scheme not in ("pulsar", "pulsar+ssl"):
            raise ValueError(f"not a Pulsar service URL: {service_url!r}")
        self.use_tls = parsed.scheme == "pulsar+ssl"
        self.service_address = f"{parsed.hostname}:{parsed.port or (6651 if self.use_tls else 6650)}"
        self.auth_token = auth_token
        self.operation_timeout_s = operation_timeout_s
        self._ssl: ssl.SSLContext | None = None
        if self.use_tls:
            self._ssl = ssl.create_default_context(cafile=tls_trust_file or None)
            if tls_allow_insecure:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self._connections: dict[tuple[str, str | None], asyncio.Future] = {}
        self._next_id = 0
        self.closed = False

    def new_id(self) -> int:
        """Producer and consumer ids: unique per client, hence per connection."""
        self._next_id += 1
        return self._next_id

    # -- connections ------------------------------------------------------------------------------

    async def connection(self, address: str | None = None, proxy_to: str | None = None) -> Connection:
        """The live connection to ``address`` (default: the service URL), opening one if needed."""
        if self.closed:
            raise WireError("AlreadyClosed", "the Pulsar client is closed")
        key = (address or self.service_address, proxy_to)
        pending = self._connections.get(key)
        if pending is not None and pending.done() and (pending.exception() is not None or pending.result().closed):
            pending = None
        if pending is None:
            pending = asyncio.ensure_future(self._open(*key))
            self._connections[key] = pending
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.shield(pending)
        except WireError:
            if self._connections.get(key) is pending:
                del self._connections[key]
            raise

    async def _open(self, address: str, proxy_to: str | None) -> Connection:
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(loop.create_connection(
                lambda: Connection(address, self.auth_token, proxy_to), host, int(port),
                ssl=self._ssl, server_hostname=host if self._ssl else None), self.operation_timeout_s)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            raise WireError("ConnectError", f"cannot connect to {address}: {exc!r}") from None
        try:
            await asyncio.wait_for(asyncio.shield(connection.connected), self.operation_timeout_s)
        except asyncio.TimeoutError:
            connection.close(WireError("Timeout", "no CONNECTED"))
            raise WireError("ConnectError", f"{address} did not complete the handshake") from None
        return connection

    # -- lookups --------------------------------------------------------------------------------

    async def lookup(self, topic: str) -> tuple[str, str | None]:
        """(address to connect to, broker URL to name through a proxy or None) for ``topic``."""
        connection = await self.connection()
        authoritative = False
        for _ in range(MAX_REDIRECTS):
            frame = await connection.request(cmd.LOOKUP, {"topic": topic, "authoritative": authoritative},
                                             self.operation_timeout_s)
            body = frame.body
            url = body.get("brokerServiceUrlTls") if self.use_tls else body.get("brokerServiceUrl")
            url = url or body.get("brokerServiceUrl")
            if not url:
                raise WireError("LookupError", f"lookup of {topic} named no broker")
            address = _address(url)
            proxied = body.get("proxy_through_service_url", False)
            if body.get("response") == cmd.LOOKUP_CONNECT:
                return (self.service_address, url) if proxied else (address, None)
            # Redirect: ask the named broker (or the proxy on its behalf) again.
            authoritative = body.get("authoritative", False)
            connection = await (self.connection(self.service_address, url) if proxied else self.connection(address))
        raise WireError("LookupError", f"lookup of {topic}: more than {MAX_REDIRECTS} redirects")

    async def connection_for(self, topic: str) -> Connection:
        address, proxy_to = await self.lookup(topic)
        return await self.connection(address, proxy_to)

    async def close(self) -> None:
        self.closed = True
        for pending in list(self._connections.values()):
            if pending.done() and not pending.cancelled() and pending.exception() is None:
                pending.result().close()
            elif not pending.done():
                pending.cancel()
        self._connections.clear()


def _address(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port or (6651 if parsed.scheme == 'pulsar+ssl' else 6650)}"
