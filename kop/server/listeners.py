"""Kafka listeners: where kop accepts connections, with which security protocol, and what it advertises.

Like Kafka's ``listeners`` / ``advertised.listeners``: the primary listener (``server.listen_host``,
``listen_port``, ``advertised_host``, ``advertised_port``, ``security_protocol``) plus
``server.listeners`` (``PROTOCOL://host:port,...``). Each listener is named after its security
protocol, one per protocol. A client is answered (Metadata, FindCoordinator) with the addresses of
the listener it connected through, on every gateway of the fleet: the fleet registry carries each
gateway's advertised address per listener name.

Security protocols: PLAINTEXT; SSL (TLS, optionally with client certificates); SASL_PLAINTEXT and
SASL_SSL (a SASL exchange, server/sasl_session.py, must succeed before any other request than
ApiVersions, SaslHandshake and SaslAuthenticate).

TLS: TLS 1.2 or newer, the server certificate chain and key from ``tls.cert_file`` / ``key_file``;
``tls.client_auth`` ``required`` makes it mTLS (a client without a certificate signed by
``tls.ca_file`` is refused in the handshake), ``requested`` verifies a certificate when one is sent.
A client speaking plaintext to a TLS port fails the TLS handshake: kop logs one line and closes
(:class:`TlsServer` awaits each handshake, since asyncio's TLS server closes such connections silently).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Callable

from ..config import Config
from ..config_checks import parse_listeners

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listener:
    name: str  # = its security protocol
    host: str
    port: int  # 0: any free port (resolved when bound)
    advertised_host: str
    advertised_port: int  # 0: the bound port

    @property
    def tls(self) -> bool:
        return self.name in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.name.startswith("SASL_")


def listeners_of(config: Config) -> list[Listener]:
    s = config.server
    out = [Listener(s.security_protocol, s.listen_host, s.listen_port, s.advertised_host, s.advertised_port)]
    advertised = {name: (host, port) for name, host, port in parse_listeners(s.advertised_listeners)}
    for name, host, port in parse_listeners(s.listeners):
        adv_host, adv_port = advertised.get(name, (host if host not in ("0.0.0.0", "::") else s.advertised_host, 0))
        out.append(Listener(name, host, port, adv_host, adv_port))
    return out


def server_ssl_context(config: Config) -> ssl.SSLContext:
    tls = config.tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_auth != "none":
        context.load_verify_locations(cafile=tls.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if tls.client_auth == "required" else ssl.CERT_OPTIONAL
    return context


def certificate_subject(peercert: dict | None) -> str | None:
    """"CN=...,O=..." of a verified client certificate (``getpeercert()``), or None."""
    if not peercert:
        return None
    parts = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                     "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}.get(key, key)
            parts.append(f"{short}={value}")
    return ",".join(parts) or None


class TlsServer:
    """A TLS listener with its own accept loop: each connection's handshake is awaited
    (``loop.connect_accepted_socket``), so a failed one (a plaintext client, an unknown CA, no
    client certificate under mTLS, a timeout) is logged in one line and closed; asyncio's own TLS
    server closes such connections silently. Offers the parts of ``asyncio.Server`` kop uses."""

    def __init__(self, make_connection: Callable[[], asyncio.Protocol], host: str, port: int,
                 context: ssl.SSLContext, timeout_s: float = 10.0, reuse_port: bool = False) -> None:
        self._make_connection = make_connection
        self._context = context
        self._timeout_s = timeout_s
        sock = socket.create_server((host, port), backlog=1024, reuse_port=reuse_port)
        sock.setblocking(False)
        self.sockets = [sock]
        self._task: asyncio.Task | None = None
        self._handshakes: set[asyncio.Task] = set()

    async def start_serving(self) -> None:
        self._task = asyncio.ensure_future(self._accept_loop())

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(self.sockets[0])
            except OSError as exc:  # EMFILE and friends: keep serving the connections we have
                log.warning("TLS listener: accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.ensure_future(self._handshake(sock, peer))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, peer) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self._make_connection, sock, ssl=self._context, ssl_handshake_timeout=self._timeout_s)
        except (ssl.SSLError, OSError, asyncio.TimeoutError, ConnectionError) as exc:
            log.warning("TLS handshake with %s failed, connection closed: %s", _peer(peer),
                        str(exc) or type(exc).__name__)
            sock.close()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for task in list(self._handshakes):
            task.cancel()
        self.sockets[0].close()


def _peer(peer) -> str:
    return f"{peer[0]}:{peer[1]}" if peer else "a client"
