"""The /metrics, /health and /ready endpoint (kop/server/status_http.py), on a real socket, no Pulsar."""

from __future__ import annotations

import asyncio
import json

import pytest

from kop import metrics
from kop.server.status_http import MAX_HEAD_BYTES, StatusServer


async def _http(port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def _serving(pulsar_ok, listeners_up=lambda: True) -> StatusServer:
    server = StatusServer("127.0.0.1", 0, listeners_up, pulsar_ok)
    await server.start()
    return server


async def test_health_metrics_and_unknown_paths():
    async def ok() -> bool:
        return True
    server = await _serving(ok)
    try:
        assert await _http(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") == (200, b"ok\n")
        metrics.REQUESTS.labels("Produce", "9", "NONE").inc()
        status, body = await _http(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert status == 200 and b'kop_requests_total{api="Produce",error="NONE",version="9"}' in body
        assert b"process_resident_memory_bytes" in body
        assert (await _http(server.port, b"HEAD /metrics HTTP/1.1\r\n\r\n")) == (200, b"")
        assert (await _http(server.port, b"GET /nope HTTP/1.1\r\n\r\n"))[0] == 404
        assert (await _http(server.port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0] == 405
        assert (await _http(server.port, b"garbage\r\n\r\n"))[0] == 400
        assert (await _http(server.port, b"GET /" + b"a" * (2 * MAX_HEAD_BYTES) + b" HTTP/1.1\r\n\r\n"))[0] == 400
    finally:
        await server.close()


@pytest.mark.parametrize("failure", ["refused", "unhealthy", "listeners"])
async def test_ready_says_which_part_is_not(failure):
    async def pulsar() -> bool:
        if failure == "refused":
            raise ConnectionError("connection refused")
        return failure != "unhealthy"
    server = await _serving(pulsar, listeners_up=lambda: failure != "listeners")
    try:
        status, body = await _http(server.port, b"GET /ready HTTP/1.1\r\n\r\n")
        detail = json.loads(body)
        assert status == 503 and detail["ready"] is False
        expected = {"refused": ("pulsar", "unreachable"), "unhealthy": ("pulsar", "unhealthy"),
                    "listeners": ("listeners", "down")}[failure]
        assert detail[expected[0]].startswith(expected[1]), detail
    finally:
        await server.close()


async def test_ready_checks_pulsar_at_most_once_per_cache_period():
    calls = 0

    async def pulsar() -> bool:
        nonlocal calls
        calls += 1
        return True
    server = await _serving(pulsar)
    try:
        for _ in range(5):
            assert (await _http(server.port, b"GET /ready HTTP/1.1\r\n\r\n"))[0] == 200
        assert calls == 1
    finally:
        await server.close()


async def test_a_client_that_never_finishes_its_request_is_dropped(monkeypatch):
    from kop.server import status_http
    monkeypatch.setattr(status_http, "HEAD_TIMEOUT_S", 0.2)

    async def ok() -> bool:
        return True
    server = await _serving(ok)
    try:
        assert (await _http(server.port, b"GET /health HTTP/1.1\r\n"))[0] == 400
    finally:
        await server.close()
