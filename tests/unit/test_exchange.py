"""kop/server/exchange.py, driven with bytes: frames in any chunking, what a frame is (a request, the
KIP-511 fallback, a raw SASL token, a protocol violation), and answers leaving in request order
whatever order they complete in. No event loop, no socket."""

from __future__ import annotations

import random
import struct
from types import SimpleNamespace

import pytest
from kafka.protocol.metadata import ApiVersionsResponse

from kop.handlers import api_versions
from kop.handlers.registry import load_all
from kop.protocol.errors import ProtocolViolation
from kop.server.exchange import Exchange
from support import raw_request

HANDLERS = load_all()
ROUTES = {key: SimpleNamespace(entry=entry) for key, entry in HANDLERS.items()}


def exchange(max_inflight: int = 100, max_frame_size: int = 1 << 20) -> Exchange:
    return Exchange(ROUTES, max_frame_size, max_inflight, api_versions.fallback_response)


def api_versions_request(correlation_id: int, version: int = 0) -> bytes:
    return raw_request(18, version, b"", correlation_id=correlation_id)


def answer_bytes(ex: Exchange) -> bytes:
    out = b""
    while (call := ex.next_answer()) is not None:
        out += b"".join(bytes(c) for c in call.chunks or [])
    return out


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """(correlation id, body) of each response frame in ``data``."""
    out, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        (correlation_id,) = struct.unpack_from(">i", data, pos + 4)
        out.append((correlation_id, data[pos + 8:pos + 4 + size]))
        pos += 4 + size
    return out


def body_of(correlation_id: int):
    R = ApiVersionsResponse
    return R(error_code=0, api_keys=[R.ApiVersion(api_key=18, min_version=0, max_version=correlation_id)],
             throttle_time_ms=0)


@pytest.mark.parametrize("chunk", [None, 1, 3, 7])
def test_answers_leave_in_request_order_whatever_the_chunking_and_completion_order(chunk):
    stream = b"".join(api_versions_request(cid) for cid in range(1, 6))
    ex = exchange()
    pieces = [stream] if chunk is None else [stream[i:i + chunk] for i in range(0, len(stream), chunk)]
    calls = [ex.accept(frame) for piece in pieces for frame in ex.frames(piece)]
    assert [c.correlation_id for c in calls] == [1, 2, 3, 4, 5]
    assert all(c.route.entry.api_key == 18 and c.api_version == 0 for c in calls)
    order = [4, 2, 0, 3, 1]
    written = b""
    for i in order:  # complete out of order; only a ready head goes out
        Exchange.answer(calls[i], body_of(calls[i].correlation_id))
        written += answer_bytes(ex)
        if i != 0 and not written:
            assert ex.next_answer() is None
    assert [cid for cid, _ in responses(written)] == [1, 2, 3, 4, 5]
    for cid, body in responses(written):
        decoded = ApiVersionsResponse.decode(body, version=0)
        assert decoded.api_keys[0].max_version == cid
    assert not ex.pending


def test_no_answer_still_takes_its_turn():
    """acks=0 Produce: no bytes, but the answers after it are not held back."""
    ex = exchange()
    first, second = [ex.accept(f) for f in ex.frames(api_versions_request(1) + api_versions_request(2))]
    Exchange.answer(second, body_of(2))
    assert answer_bytes(ex) == b""
    Exchange.answer(first, None)
    assert [cid for cid, _ in responses(answer_bytes(ex))] == [2]


def test_a_newer_api_versions_gets_the_kip_511_answer_at_once():
    newest = HANDLERS[18].max_version
    ex = exchange()
    [frame] = ex.frames(raw_request(18, newest + 5, b"\x07garbage body of a future version", correlation_id=77))
    call = ex.accept(frame)
    assert call.ready and call.route is None  # never decoded: no handler runs
    [(cid, body)] = responses(answer_bytes(ex))
    assert cid == 77
    assert body == b"".join(bytes(c) for c in api_versions.fallback_response(77))[8:]
    assert ApiVersionsResponse.decode(body, version=0).error_code == 35  # UNSUPPORTED_VERSION


@pytest.mark.parametrize("frame, message", [
    (raw_request(4, 0, b""), "unknown or unserved API key 4"),          # LeaderAndIsr: a broker's API
    (raw_request(3, 99, b""), "API key 3 version 99 is not served"),
    (raw_request(0, 2, b""), "API key 0 version 2 is not served"),      # Produce: advertised from 0, served from 3
    (raw_request(18, 0, b"")[:4] + b"\x00\x01", "too short"),
])
def test_protocol_violations(frame, message):
    ex = exchange()
    with pytest.raises(ProtocolViolation, match=message):
        for f in ex.frames(struct.pack(">i", len(frame) - 4) + frame[4:] if message == "too short" else frame):
            ex.accept(f)


def test_a_frame_over_the_limit_is_refused_before_it_is_buffered():
    ex = exchange(max_frame_size=1000)
    with pytest.raises(ProtocolViolation, match="exceeds the limit"):
        ex.frames(struct.pack(">i", 1001))
    assert ex.buffered == 0


def test_raw_sasl_tokens_are_not_requests():
    ex = exchange()
    [frame] = ex.frames(struct.pack(">i", 8) + b"\x00user\x00pw")
    call = ex.accept(frame, raw_token=True)
    assert call.route is None and not call.ready and bytes(call.frame) == b"\x00user\x00pw"
    Exchange.answer_raw(call, b"ok")
    assert answer_bytes(ex) == b"\x00\x00\x00\x02ok"
    failed = ex.accept(ex.frames(struct.pack(">i", 10) + b"\x00user\x00pwd!")[0], raw_token=True)
    Exchange.answer_raw(failed, None)  # a failed exchange answers nothing (then the connection closes)
    assert answer_bytes(ex) == b"" and not ex.pending


def test_full_at_max_inflight():
    ex = exchange(max_inflight=3)
    calls = [ex.accept(f) for f in ex.frames(b"".join(api_versions_request(c) for c in range(3)))]
    assert ex.full
    Exchange.answer(calls[0], body_of(0))
    ex.next_answer()
    assert not ex.full


def test_random_chunking_of_a_mixed_stream():
    """Requests, a KIP-511 fallback and answers, fed in random pieces: the same bytes out as whole."""
    stream = b"".join([api_versions_request(1), raw_request(18, 50, b"\x01\x02", correlation_id=2),
                       api_versions_request(3)])
    rng = random.Random(7)
    for _ in range(20):
        ex, pos, calls = exchange(), 0, []
        while pos < len(stream):
            step = rng.randint(1, 12)
            calls += [ex.accept(f) for f in ex.frames(stream[pos:pos + step])]
            pos += step
        for call in calls:
            if not call.ready:
                Exchange.answer(call, body_of(call.correlation_id))
        assert [cid for cid, _ in responses(answer_bytes(ex))] == [1, 2, 3]
