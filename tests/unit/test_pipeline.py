"""kop/server/pipeline.py and the connection driver, in-process: which links each API's chain has
(from its registry flags), what each link does, and that an immediate handler's answer is written
within the step that received its request."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from kafka.protocol.metadata import ApiVersionsResponse

from kop import metrics
from kop.handlers.registry import Handler, load_all
from kop.protocol.errors import ErrorCode, ProtocolViolation
from kop.server.connection import KafkaConnection, Wiring
from kop.server.exchange import Call, Exchange
from kop.server.pipeline import Pipeline
from support import raw_request

HANDLERS = load_all()


def make_context(header, peer, session, listener):
    return SimpleNamespace(header=header, version=header.api_version, client_address=peer, session=session,
                           backend=SimpleNamespace(namespace=SimpleNamespace(path="t/ns")))


PIPELINE = Pipeline.standard(make_context)
ROUTES = PIPELINE.routes(HANDLERS)


def names(api_key: int) -> list[str]:
    return [type(link).__name__ for link in ROUTES[api_key].links]


def test_each_api_gets_the_links_its_flags_ask_for():
    assert names(0) == ["SaslGate", "Decode", "Metrics", "ErrorFallback"]  # Produce: immediate, nothing more
    assert names(1) == ["SaslGate", "Decode", "Metrics", "ErrorFallback", "Serialize"]
    assert names(11) == ["SaslGate", "Decode", "Metrics", "ErrorFallback", "GroupAuthorization"]
    for key in (17, 18, 36):  # served before SASL authentication
        assert names(key) == ["Decode", "Metrics", "ErrorFallback"]
    for key, entry in HANDLERS.items():
        assert ("GroupAuthorization" in names(key)) == entry.group_api
        assert ("Serialize" in names(key)) == entry.serialized
        assert ("SaslGate" in names(key)) == (not entry.before_auth)


class Session(SimpleNamespace):
    required = True
    authenticated = False
    groups_allowed = True
    expects_raw_token = False
    failed = False

    def describe(self):
        return "alice"

    def close(self):
        pass


def fake_conn(session=None):
    return SimpleNamespace(session=session, peer="10.0.0.1:1", listener=None, identify=lambda header: None)


def call_for(frame: bytes, conn, routes=ROUTES) -> Call:
    ex = Exchange(routes, 1 << 20, 10, lambda cid: [])
    [data] = ex.frames(frame)
    call = ex.accept(data)
    call.conn = conn
    return call


def test_the_sasl_gate_closes_before_the_body_is_decoded():
    garbage_metadata = raw_request(3, 12, b"\xff" * 40, flexible=True)
    call = call_for(garbage_metadata, fake_conn(Session()))
    with pytest.raises(ProtocolViolation, match="API key 3 before SASL authentication"):
        ROUTES[3].start(call)
    assert call.request is None  # never decoded
    call = call_for(garbage_metadata, fake_conn(Session(authenticated=True)))
    with pytest.raises(ProtocolViolation, match="undecodable"):  # authenticated: decoded, and refused as garbage
        ROUTES[3].start(call)


def test_apis_before_auth_pass_the_gate():
    call = call_for(raw_request(18, 0, b""), fake_conn(Session()))
    response = asyncio.run(ROUTES[18].start(call))
    assert response.error_code == 0 and ROUTES[18].finish(call, response) is response


def test_group_apis_are_refused_for_a_principal_without_rights(caplog):
    from kafka.protocol.consumer import HeartbeatRequest
    body = bytes(HeartbeatRequest(group_id="g", generation_id=1, member_id="m").encode(version=0))
    call = call_for(raw_request(12, 0, body), fake_conn(Session(authenticated=True, groups_allowed=False)))
    response = ROUTES[12].start(call)  # answered at once: the handler (and the coordinator) never runs
    assert response.error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED
    assert "GROUP_AUTHORIZATION_FAILED" in caplog.text and "t/ns" in caplog.text


def _routes_with(serve, error_response=None, immediate=True):
    entry = Handler(18, 0, 3, 0, serve, error_response=error_response, immediate=immediate)
    return {18: PIPELINE.route(entry)}


def test_a_failing_handler_is_answered_unknown_server_error(caplog):
    def serve(ctx, request):
        raise RuntimeError("boom")
    answer = ApiVersionsResponse(error_code=0, api_keys=[], throttle_time_ms=0)
    routes = _routes_with(serve, lambda request, code: ApiVersionsResponse(error_code=code, api_keys=[],
                                                                             throttle_time_ms=0))
    call = call_for(raw_request(18, 0, b""), fake_conn(), routes)
    assert routes[18].start(call) is None and isinstance(call.error, RuntimeError)
    response = routes[18].finish(call, None)
    assert response.error_code == ErrorCode.UNKNOWN_SERVER_ERROR and call.error is None
    assert "failed; answering UNKNOWN_SERVER_ERROR" in caplog.text and "boom" in caplog.text
    # a failure that comes later (a task, a future) takes the same way out
    call = call_for(raw_request(18, 0, b""), fake_conn(), routes)
    call.error = ValueError("later")
    assert routes[18].finish(call, None).error_code == ErrorCode.UNKNOWN_SERVER_ERROR
    call = call_for(raw_request(18, 0, b""), fake_conn(), routes)
    assert routes[18].finish(call, answer) is answer


def test_without_an_error_response_the_failure_closes_the_connection():
    def serve(ctx, request):
        raise RuntimeError("boom")
    routes = _routes_with(serve)
    call = call_for(raw_request(18, 0, b""), fake_conn(), routes)
    routes[18].start(call)
    with pytest.raises(RuntimeError):
        routes[18].finish(call, None)


def test_metrics_count_the_answer_sent():
    def count(api_key: str, code: str) -> float:
        return metrics.REGISTRY.get_sample_value("kop_requests_total", {"api": api_key, "version": "0",
                                                                        "error": code}) or 0.0
    before = count("ApiVersions", "UNKNOWN_SERVER_ERROR")

    def serve(ctx, request):
        raise RuntimeError("boom")
    routes = _routes_with(serve, lambda request, code: ApiVersionsResponse(error_code=code, api_keys=[],
                                                                             throttle_time_ms=0))
    call = call_for(raw_request(18, 0, b""), fake_conn(), routes)
    routes[18].start(call)
    routes[18].finish(call, None)
    assert count("ApiVersions", "UNKNOWN_SERVER_ERROR") == before + 1


# --- the driver -------------------------------------------------------------------------------------------

class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name):
        return ("10.0.0.1", 1) if name == "peername" else None

    def writelines(self, chunks) -> None:
        self.written.append(b"".join(bytes(c) for c in chunks))

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def connect(routes) -> tuple[KafkaConnection, Transport]:
    conn = KafkaConnection(Wiring(routes, lambda cid: [], 1 << 20, 100))
    transport = Transport()
    conn.connection_made(transport)
    return conn, transport


async def test_an_immediate_answer_is_written_within_the_step_that_received_it():
    answer = ApiVersionsResponse(error_code=0, api_keys=[], throttle_time_ms=0)
    conn, transport = connect(_routes_with(lambda ctx, request: answer))
    conn.data_received(raw_request(18, 0, b"", correlation_id=5) * 2)
    assert len(transport.written) == 2 and transport.written[0][4:8] == (5).to_bytes(4, "big")  # no loop step
    conn.connection_lost(None)


async def test_an_immediate_future_is_answered_by_its_own_callback():
    pending: list[asyncio.Future] = []

    def serve(ctx, request):
        pending.append(asyncio.get_running_loop().create_future())
        return pending[-1]
    conn, transport = connect(_routes_with(serve))
    conn.data_received(raw_request(18, 0, b"", correlation_id=1) + raw_request(18, 0, b"", correlation_id=2))
    assert len(pending) == 2 and not transport.written and not conn.idle
    pending[1].set_result(ApiVersionsResponse(error_code=0, api_keys=[], throttle_time_ms=0))
    await asyncio.sleep(0)
    assert not transport.written  # the second waits for the first
    pending[0].set_result(ApiVersionsResponse(error_code=0, api_keys=[], throttle_time_ms=0))
    await asyncio.sleep(0)  # one step: the future's callback writes both
    assert [w[4:8] for w in transport.written] == [(1).to_bytes(4, "big"), (2).to_bytes(4, "big")]
    assert conn.idle and conn.requests_served == 2
    conn.connection_lost(None)


async def test_a_failed_future_is_answered_with_the_error_response():
    def serve(ctx, request):
        future = asyncio.get_running_loop().create_future()
        future.set_exception(RuntimeError("late"))
        return future
    conn, transport = connect(_routes_with(serve, lambda request, code: ApiVersionsResponse(
        error_code=code, api_keys=[], throttle_time_ms=0)))
    conn.data_received(raw_request(18, 0, b""))
    await asyncio.sleep(0)
    [written] = transport.written
    assert ApiVersionsResponse.decode(written[8:], version=0).error_code == ErrorCode.UNKNOWN_SERVER_ERROR
    conn.connection_lost(None)


async def test_a_failure_without_error_response_closes_the_connection():
    async def serve(ctx, request):
        raise RuntimeError("boom")
    conn, transport = connect(_routes_with(serve, immediate=False))
    conn.data_received(raw_request(18, 0, b""))
    for _ in range(3):
        await asyncio.sleep(0)
    assert transport.closed and not transport.written
    conn.connection_lost(None)
