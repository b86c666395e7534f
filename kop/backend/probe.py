"""Reachability probes for ``kop check``: Pulsar's binary protocol and its admin REST API.

The service URL is checked with the Pulsar protocol's own handshake (CONNECT, answered CONNECTED),
with kop's token when one is configured, on a socket of its own: nothing is looked up, created or
subscribed, so checking a production cluster leaves no trace in it. The pulsar-client library has
no such call (its first lookup would auto-create topics on many clusters).

The frames are those of kop's own Pulsar client (wire/), on a connection of their own.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from urllib.parse import urlsplit

from .. import __version__
from .wire import commands as cmd
from .wire import frames
from .wire.connection import PROTOCOL_VERSION
from . import admin as admin_api
from . import retention_check
from .entry_index import missing_entry_index
from ..mapping.topics import Namespace

_COMMAND_NAMES = {cmd.CONNECTED: "CONNECTED", cmd.ERROR: "ERROR", cmd.AUTH_CHALLENGE: "AUTH_CHALLENGE"}


def connect_frame(token: str = "") -> bytes:
    body: dict = {"client_version": f"kop-check {__version__}", "protocol_version": PROTOCOL_VERSION}
    if token:
        body.update(auth_method_name="token", auth_data=token.encode())
    return frames.command(cmd.CONNECT, body)


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
    try:
        kind = frames.decode_frame(memoryview(body)).type
    except frames.FrameError:
        kind = None
    if kind != cmd.CONNECTED:
        readable = body[4:].decode("utf-8", "replace")
        raise ConnectionError(f"Pulsar answered {_COMMAND_NAMES.get(kind, kind)} instead of CONNECTED: "
                              f"{''.join(ch for ch in readable if ch.isprintable())[:200]}")
    return f"service URL {url}: Pulsar protocol handshake answered CONNECTED"


async def pulsar_admin(url: str, token: str, topics_namespace: str, system_namespace: str,
                       timeout_s: float = 10.0, offsets_mode: str = "packed") -> tuple[list[str], list[str]]:
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
        try:
            missing = missing_entry_index(await admin.runtime_configuration())
        except admin_api.AdminError as exc:
            problems.append(f"broker runtime configuration not readable ({exc}): kop reads it at start")
        else:
            if not missing:
                found.append(f"broker entry index on: both offsets modes work (configured: {offsets_mode})")
            elif offsets_mode == "contiguous":
                problems.append(f"offsets.mode = \"contiguous\" needs {missing} on the brokers "
                                f"(or offsets.mode = \"packed\"; README, \"Offsets\")")
            else:
                found.append(f"broker entry index off: offsets.mode \"packed\" only (contiguous needs {missing})")
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
