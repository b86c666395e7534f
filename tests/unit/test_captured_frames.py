"""Request frames captured from real clients (tests/data/frames, by scripts/capture_frames.py): Java
kafka-clients 4.1.2 (Kafka's tools), librdkafka (confluent-kafka), kafka-python, aiokafka and
franz-go, one frame per client, API and version. Each is framed, routed and decoded by kop whole and
one byte at a time, and re-encodes to exactly the bytes the client sent: kop reads every field as
the client wrote it.

Bytes after the body: librdkafka 2.16 sends its "all topics" Metadata v13 request with three bytes
(01 00 00) after the body (its other Metadata v13 requests have none); Apache Kafka's broker ignores
them and so does kop (protocol/messages.py).
Such a frame is kept beside the client's ordinary one, suffixed ``-trailing``, and the index records
the bytes; the body before them still re-encodes exactly. No other client sends any.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from kop.handlers.registry import load_all
from kop.protocol import messages
from kop.protocol.framing import FrameDecoder
from kop.server.exchange import Exchange

FRAMES = Path(__file__).resolve().parents[1] / "data" / "frames"
INDEX = json.loads((FRAMES / "index.json").read_text())
ENTRIES = INDEX["frames"]
HANDLERS = load_all()
ROUTES = {key: SimpleNamespace(entry=entry) for key, entry in HANDLERS.items()}
# (client, api_key, version) -> the bytes it sends after the body
KNOWN_TRAILING = {("librdkafka", 3, 13): "010000"}


def test_the_index_lists_every_frame_of_every_client():
    files = {str(p.relative_to(FRAMES)) for p in FRAMES.rglob("*.bin")}
    assert files == {e["file"] for e in ENTRIES}
    assert {e["client"] for e in ENTRIES} == {"java", "librdkafka", "kafka-python", "aiokafka", "franz-go"}
    assert set(INDEX["clients"]) == {e["client"] for e in ENTRIES}
    assert len(ENTRIES) >= 80


def _header_bytes(header: messages.RequestHeader, flexible: bool) -> bytes:
    out = struct.pack(">hhi", header.api_key, header.api_version, header.correlation_id)
    if header.client_id is None:
        out += struct.pack(">h", -1)
    else:
        client_id = header.client_id.encode()
        out += struct.pack(">h", len(client_id)) + client_id
    return out + (b"\x00" if flexible else b"")  # header v2: no tagged fields (no client sent any)


def _reencoded(request, version: int) -> bytes:
    try:
        request._header  # noqa: B018 (kafka-python's encoder reads it; decoders leave it unset)
    except AttributeError:
        request._header = None
    return bytes(request.encode(version=version))


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_a_captured_frame_decodes_and_reencodes_byte_for_byte(entry):
    data = (FRAMES / entry["file"]).read_bytes()
    assert len(data) == entry["bytes"] and struct.unpack_from(">i", data)[0] == len(data) - 4
    [frame] = FrameDecoder(1 << 20).feed(data)
    frame = bytes(frame)
    api_key, version = entry["api_key"], entry["version"]
    assert messages.peek_header(frame)[:2] == (api_key, version)
    flexible = messages.is_flexible(api_key, version)
    header, offset = messages.parse_header(frame, flexible)
    assert _header_bytes(header, flexible) == frame[:offset]
    trailing = bytes.fromhex(entry["trailing"])
    if trailing:
        assert entry["file"].endswith("-trailing.bin") and frame.endswith(trailing)
    request = messages.decode_request(api_key, version, frame, offset)
    assert _reencoded(request, version) == frame[offset:len(frame) - len(trailing)]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_a_captured_frame_one_byte_at_a_time_is_a_request_kop_serves(entry):
    data = (FRAMES / entry["file"]).read_bytes()
    exchange = Exchange(ROUTES, 1 << 20, 10, lambda correlation_id: [])
    calls = [exchange.accept(frame) for i in range(len(data)) for frame in exchange.frames(data[i:i + 1])]
    [call] = calls
    assert (call.route.entry.api_key, call.api_version) == (entry["api_key"], entry["version"])
    assert bytes(call.frame) == data[4:] and exchange.buffered == 0


def test_only_librdkafka_sends_bytes_after_a_body():
    sent = {(e["client"], e["api_key"], e["version"]): e["trailing"] for e in ENTRIES if e["trailing"]}
    assert sent == KNOWN_TRAILING
