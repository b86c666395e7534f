"""The operator's HTTP endpoint (``metrics.listen_host:listen_port``, 127.0.0.1:9404 by default).

    GET /metrics   Prometheus text format (kop/metrics.py, plus the group and lag collectors)
    GET /health    200 while the process runs and its event loop answers
    GET /ready     200 once every Kafka listener is up and Pulsar answers (its admin health check,
                   at most one call per ``READY_CACHE_S``), 503 otherwise; JSON saying which part fails

Deliberately small: HTTP/1.1 GET and HEAD only, one request per connection (``Connection: close``),
request head at most 8 KiB, 10 s to send it. A scraper and a probe need nothing more, and nothing
here can hold memory for a slow or hostile client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import metrics

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 8192
HEAD_TIMEOUT_S = 10.0
READY_CACHE_S = 5.0


class StatusServer:
    """``listeners_up()`` says whether the Kafka listeners serve; ``pulsar_ok()`` checks Pulsar."""

    def __init__(self, host: str, port: int, listeners_up: Callable[[], bool],
                 pulsar_ok: Callable[[], Awaitable[bool]],
                 metrics_source: Callable[[], Awaitable[bytes]] | None = None, checked: str = "pulsar") -> None:
        """``metrics_source`` replaces this process's registry (the workers' supervisor merges
        theirs); ``checked`` names what ``pulsar_ok`` checks in the /ready answer."""
        self.host, self.port = host, port
        self._listeners_up = listeners_up
        self._pulsar_ok = pulsar_ok
        self._metrics_source = metrics_source
        self._checked = checked
        self._server: asyncio.base_events.Server | None = None
        self._pulsar_checked = (0.0, False, "not checked yet")  # (monotonic time, ok, detail)
        self._checking: asyncio.Future | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True,
                                                  limit=MAX_HEAD_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics and health on http://%s:%d (/metrics, /health, /ready)", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = "GET"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
            method, path = _request_line(head)
            status, content_type, body = await self._answer(method, path)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        try:
            writer.write(f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + (b"" if method == "HEAD" else body))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET and HEAD\n"
        path = path.split("?", 1)[0]
        if path == "/metrics":
            body = await self._metrics_source() if self._metrics_source else generate_latest(metrics.REGISTRY)
            return 200, CONTENT_TYPE_LATEST, body
        if path == "/health":
            return 200, "text/plain", b"ok\n"
        if path == "/ready":
            ready, detail = await self.readiness()
            return (200 if ready else 503), "application/json", (json.dumps(detail) + "\n").encode()
        return 404, "text/plain", b"not found: /metrics, /health, /ready\n"

    async def readiness(self) -> tuple[bool, dict]:
        listeners = self._listeners_up()
        checked_at, pulsar, why = self._pulsar_checked
        if time.monotonic() - checked_at > READY_CACHE_S:
            if self._checking is None or self._checking.done():
                self._checking = asyncio.ensure_future(self._check_pulsar())
            await asyncio.shield(self._checking)
            _, pulsar, why = self._pulsar_checked
        return listeners and pulsar, {"ready": listeners and pulsar, "listeners": "up" if listeners else "down",
                                      self._checked: why}

    async def _check_pulsar(self) -> None:
        try:
            ok = await asyncio.wait_for(self._pulsar_ok(), 10)
            why = "ok" if ok else ("unhealthy (admin brokers/health did not answer ok)" if self._checked == "pulsar"
                                   else "not ready")
        except Exception as exc:  # unreachable, timeout: the probe says so, kop goes on
            ok, why = False, f"unreachable: {type(exc).__name__}: {exc}"
        self._pulsar_checked = (time.monotonic(), ok, why)


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _request_line(head: bytes) -> tuple[str, str]:
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError("request head too long")
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1 request line: {line[:80]!r}")
    return parts[0], parts[1]
