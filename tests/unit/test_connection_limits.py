"""KafkaConnection (kop/server/connection.py) with the gateway's limits, in-process: a fake
transport and an ApiVersions handler the test completes by hand. No Pulsar: this is the wiring -
refusal at connect, the queued-bytes budget pausing and resuming reading across connections, the
answers still written in request order, the budget given back when a connection dies."""

from __future__ import annotations

import asyncio
import time

from kop.handlers.registry import Handler
from kop.protocol.messages import API_VERSIONS_KEY
from kop.server.connection import KafkaConnection, Wiring
from kop.server.limits import GatewayLimits
from kop.server.pipeline import Pipeline
from support import raw_request

FRAME = raw_request(API_VERSIONS_KEY, 0, b"", correlation_id=7)
QUEUED = len(FRAME) - 4  # what a request counts: its frame, without the length prefix


class Transport:
    def __init__(self, host: str = "10.1.1.1") -> None:
        self.host = host
        self.written: list[bytes] = []
        self.paused = False
        self.aborted = self.closed = False

    def get_extra_info(self, name: str):
        return (self.host, 4242) if name == "peername" else None

    def writelines(self, chunks) -> None:
        self.written.append(b"".join(bytes(c) for c in chunks))

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True


class Gate:
    """An ApiVersions 'handler' whose answers the test releases."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future] = []

    async def serve(self, ctx, request):
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        await future
        from kafka.protocol.metadata import ApiVersionsResponse
        return ApiVersionsResponse[0](error_code=0, api_keys=[])

    def release_all(self) -> None:
        for f in self.waiting:
            if not f.done():
                f.set_result(None)


def _connection(gate: Gate, limits: GatewayLimits, host: str = "10.1.1.1") -> tuple[KafkaConnection, Transport]:
    handlers = {API_VERSIONS_KEY: Handler(API_VERSIONS_KEY, 0, 3, 0, gate.serve)}
    conn = KafkaConnection(_wiring(handlers, limits))
    transport = Transport(host)
    conn.connection_made(transport)
    return conn, transport


def _wiring(handlers: dict, limits: GatewayLimits) -> Wiring:
    routes = Pipeline.standard(lambda header, *rest: type("Ctx", (), {
        "header": header, "version": header.api_version})()).routes(handlers)
    return Wiring(routes, fallback=lambda cid: [], max_frame_size=1 << 20, max_inflight=100, limits=limits)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_connection_over_the_limit_is_aborted_and_not_counted():
    limits = GatewayLimits(max_connections=10, max_connections_per_address=1, queued_bytes_max=1 << 20)
    gate = Gate()
    first, t1 = _connection(gate, limits)
    second, t2 = _connection(gate, limits)
    assert not t1.aborted and t2.aborted
    second.connection_lost(None)
    assert limits.connections == 1
    first.connection_lost(None)
    assert limits.connections == 0 and not limits.by_address


async def test_the_budget_pauses_every_connection_and_resumes_them_in_order():
    limits = GatewayLimits(10, 10, queued_bytes_max=3 * QUEUED)
    gate = Gate()
    a, ta = _connection(gate, limits, "10.0.0.1")
    b, tb = _connection(gate, limits, "10.0.0.2")
    a.data_received(FRAME * 2)
    assert not ta.paused and not tb.paused
    b.data_received(FRAME)  # the third frame fills the budget
    assert limits.queued_bytes == 3 * QUEUED and limits.over_budget()
    assert tb.paused
    a._update_reading()  # any connection that looks again pauses too
    assert ta.paused
    assert limits.budget_pauses == 1
    await _settle()  # the handlers start and wait at the gate
    gate.release_all()
    await _settle()
    assert not ta.paused and not tb.paused, "reading did not resume once the answers were written"
    assert limits.queued_bytes == 0
    assert len(ta.written) == 2 and len(tb.written) == 1
    assert all(w[4:8] == (7).to_bytes(4, "big") for w in ta.written + tb.written)
    a.connection_lost(None)
    b.connection_lost(None)


async def test_a_dying_connection_gives_its_queued_bytes_back():
    limits = GatewayLimits(10, 10, queued_bytes_max=2 * QUEUED)
    gate = Gate()
    a, _ = _connection(gate, limits, "10.0.0.1")
    b, tb = _connection(gate, limits, "10.0.0.2")
    a.data_received(FRAME * 2)
    b._update_reading()
    assert tb.paused
    a.connection_lost(None)  # its requests are cancelled, their bytes returned
    await _settle()
    assert limits.queued_bytes == 0 and not tb.paused
    b.connection_lost(None)


async def test_idle_time_counts_only_without_requests_in_flight():
    limits = GatewayLimits(10, 10, 1 << 20)
    gate = Gate()
    conn, _ = _connection(gate, limits)
    conn.data_received(FRAME)
    assert conn.idle_for(time.monotonic() + 1000) == 0.0  # a request in flight: never idle
    await _settle()  # the handlers start and wait at the gate
    gate.release_all()
    await _settle()
    assert conn.idle_for(time.monotonic() + 5) >= 5
    conn.connection_lost(None)


async def test_pipelined_fetches_run_one_at_a_time_and_wait_for_a_writable_socket():
    from kafka.protocol.consumer import FetchRequest

    fetch_frame = raw_request(1, 4, bytes(FetchRequest().encode(version=4)), correlation_id=9)
    started: list[int] = []

    class FetchGate(Gate):
        async def serve(self, ctx, request):
            started.append(len(started))
            return await super().serve(ctx, request)
    gate = FetchGate()
    limits = GatewayLimits(10, 10, 1 << 20)
    conn = KafkaConnection(_wiring({1: Handler(1, 4, 12, 4, gate.serve, serialized=True)}, limits))
    transport = Transport()
    conn.connection_made(transport)
    conn.data_received(fetch_frame * 3)  # three fetches pipelined
    await _settle()
    assert started == [0], "a second fetch started before the first was answered"
    conn.pause_writing()  # the client does not read: the socket buffer is full
    gate.release_all()
    await _settle()
    assert len(transport.written) == 1 and started == [0], "a fetch started while the socket was not writable"
    conn.resume_writing()
    await _settle()
    assert started == [0, 1]
    gate.release_all()
    await _settle()
    gate.release_all()
    await _settle()
    assert started == [0, 1, 2] and len(transport.written) == 3
    conn.connection_lost(None)
