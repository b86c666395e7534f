"""Reachability probes for ``kop check``: Pulsar's binary protocol and its admin REST API.

The service URL is checked with the Pulsar protocol's own handshake (CONNECT, answered CONNECTED),
with kop's token when one is configured, on a socket of its own: nothing is looked up, created or
subscribed, so checking a production cluster leaves no trace in it. The pulsar-client library has
no such call (its first lookup would auto-create topics on many clusters).

The two frames are hand-encoded protobuf (PulsarApi.proto): BaseCommand {type = 1, connect = 2},
CommandConnect {client_version = 1, auth_data = 3, protocol_version = 4, auth_method_name = 5}.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from urllib.parse import urlsplit

from .. import __version__
from . import admin as admin_api
from . import retention_check
from ..mapping.topics import Namespace

_CONNECT, _CONNECTED = 2, 3
_PROTOCOL_VERSION = 21
_COMMAND_NAMES = {3: "CONNECTED", 14: "ERROR", 36: "AUTH_CHALLENGE"}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire_type)
    if wire_type == 0:
        return key + _varint(payload)  # type: ignore[arg-type]
    return key + _varint(len(payload)) + payload  # type: ignore[arg-type]


def connect_frame(token: str = "") -> bytes:
    connect = _field(1, 2, f"kop-check {__version__}".encode()) + _field(4, 0, _PROTOCOL_VERSION)
    if token:
        connect += _field(5, 2, b"token") + _field(3, 2, token.encode())
    command = _field(1, 0, _CONNECT) + _field(2, 2, connect)
    return struct.pack(">II", len(command) + 4, len(command)) + command


def command_type(frame_body: bytes) -> int | None:
    """The ``type`` of a BaseCommand (field 1, a varint), or None when it is not the first field."""
    if not frame_body or frame_body[0] != 0x08:
        return None
    value, shift = 0, 0
    for byte in frame_body[1:6]:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value
    return None


async def pulsar_service(url: str, token: str = "", timeout_s: float = 10.0) -> str:
    """What was checked, or raises ConnectionError saying what went wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("pulsar", "pulsar+ssl") or not parts.hostname:
        raise ConnectionError(f"{url!r} is not a pulsar:// or pulsar+ssl:// URL")
    secure = parts.scheme == "pulsar+ssl"
    port = parts.port or (6651 if secure else 6650)
    context = ssl.create_default_context() if secure else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port, ssl=context), timeout_s)
    except (OSError, asyncio.TimeoutError) as exc:
        raise ConnectionError(f"cannot connect to {parts.hostname}:{port}: {exc or type(exc).__name__}") from exc
    try:
        writer.write(connect_frame(token))
        await writer.drain()
        prefix = await asyncio.wait_for(reader.readexactly(4), timeout_s)
        total, = struct.unpack(">I", prefix)
        if total > 1 << 16:  # a CONNECTED frame is a few dozen bytes
            raise ConnectionError(f"{parts.hostname}:{port} does not speak the Pulsar protocol "
                                  f"(its answer starts with {prefix!r})")
        body = await asyncio.wait_for(reader.readexactly(total), timeout_s)
    except ConnectionError:
        raise
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
        raise ConnectionError(f"{parts.hostname}:{port} did not complete the Pulsar handshake "
                              f"({type(exc).__name__}{': ' + str(exc) if str(exc) else ''}; a wrong port, "
                              f"TLS mismatch or a refused token closes the connection)") from exc
    finally:
        writer.close()
    kind = command_type(body[4:]) if len(body) > 4 else None
    if kind != _CONNECTED:
        readable = body[4:].decode("utf-8", "replace")
        raise ConnectionError(f"Pulsar answered {_COMMAND_NAMES.get(kind, kind)} instead of CONNECTED: "
                              f"{''.join(ch for ch in readable if ch.isprintable())[:200]}")
    return f"service URL {url}: Pulsar protocol handshake answered CONNECTED"


async def pulsar_admin(url: str, token: str, topics_namespace: str, system_namespace: str,
                       timeout_s: float = 10.0) -> tuple[list[str], list[str]]:
    """(findings, problems); raises ConnectionError when the admin API cannot be used at all."""
    admin = admin_api.PulsarAdmin(url, token, timeout_s)
    try:
        try:
            healthy = await admin.healthy()
        except admin_api.AdminError as exc:
            raise ConnectionError(f"{url}: {exc}") from exc
        if not healthy:
            raise ConnectionError(f"{url}: brokers/health did not answer ok (unreachable, or the token is refused)")
        found, problems = [f"admin API at {url}: broker health ok"], []
        for path, created_by_kop in ((topics_namespace, False), (system_namespace, True)):
            tenant, _, name = path.partition("/")
            try:
                await admin.namespace_policy(Namespace(tenant, name), "retention")
                found.append(f"namespace {path} exists")
                if not created_by_kop:
                    warning = await retention_check.dropping_data(admin, Namespace(tenant, name), None)
                    if warning:
                        found.append(f"WARNING: {warning}")
            except admin_api.NotFound:
                if created_by_kop:
                    found.append(f"namespace {path} does not exist yet (kop creates it when it starts)")
                else:
                    problems.append(f"namespace {path} (Kafka topics) does not exist: "
                                    f"pulsar-admin namespaces create {path}")
            except admin_api.AdminError as exc:
                problems.append(f"namespace {path}: {exc}")
        return found, problems
    finally:
        await admin.close()
