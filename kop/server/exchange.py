"""The wire logic of one Kafka connection, sans-IO: bytes in, requests out; answers in, bytes out, in order.

No sockets, no event loop (the asyncio driver is connection.py): tests drive it with bytes.

    received bytes --frames()--> frames --accept()--> Call, queued in ``pending`` (arrival order)
    Call --answer(response) / answer_raw(chunks)--> ready
    ready Calls at the head of ``pending`` --next_answer()--> the bytes to write, in request order

What it decides, from the bytes and the routes (one per API, server/pipeline.py):

- Framing: a 4-byte size, then the frame; the size is checked before anything is buffered and any
  chunking works (protocol/framing.py).
- A frame's API and version, from the fixed header fields: an API kop does not serve, or a version
  outside what its handler serves, is a protocol violation (the connection closes) — except
  ApiVersions of a version newer than kop's (KIP-511): answered at once with UNSUPPORTED_VERSION in a
  version-0 body listing what kop serves, so the client retries with one kop knows. Its body is not
  decoded: a newer version's body may not be decodable.
- After a SaslHandshake v0 the next frames are bare SASL tokens, not requests (the caller says when,
  from the session's state): such a frame is a raw Call, answered with a length-prefixed token.
- Answers leave in request order, whatever order they complete in: one deque of Calls, each holding
  its answer once ready. At most ``max_inflight`` requests are in progress (``full``: stop reading).
"""

from __future__ import annotations

import collections
import struct
from typing import Any, Callable, Mapping

from ..protocol import messages
from ..protocol.errors import ProtocolViolation
from ..protocol.framing import FrameDecoder


class Call:
    """One received frame on its way to its answer: the exchange's place in the answer order, and the
    request's state in the pipeline (server/pipeline.py). One object per request, nothing else."""

    __slots__ = ("route", "frame", "api_version", "correlation_id", "size", "ctx", "request", "started",
                 "error", "task", "written", "chunks", "ready", "conn")

    def __init__(self, route, frame, api_version: int, correlation_id: int) -> None:
        self.route = route  # None: a raw SASL token, or an answer ready at once (KIP-511)
        self.frame = frame
        self.api_version = api_version
        self.correlation_id = correlation_id
        self.size = len(frame)  # what the request counts against the gateway's budget (limits.py)
        self.ctx = None  # the handler's RequestContext, once decoded
        self.request = None  # the decoded request
        self.started = 0.0
        self.error: BaseException | None = None  # a failure on the way, mapped on the way out
        self.task = None  # what is running for it, when it did not complete at once
        self.written = None  # a future completed once its answer is written (or dropped), when asked for
        self.chunks: list | None = None  # the framed answer (None or []: nothing to write)
        self.ready = False
        self.conn = None  # the connection driver, for the links that need it

    def __call__(self, done) -> None:
        """A done-callback of what ran for this call: the Call itself, so none is allocated."""
        self.conn.settle(self, done)


class Exchange:
    __slots__ = ("_decoder", "_routes", "_fallback", "max_inflight", "pending")

    def __init__(self, routes: Mapping[int, Any], max_frame_size: int, max_inflight: int,
                 fallback: Callable[[int], list[bytes]]) -> None:
        """``routes``: api_key -> a route whose ``entry`` is the API's registry entry (handlers/registry.py);
        ``fallback(correlation_id)``: the framed KIP-511 ApiVersions answer."""
        self._decoder = FrameDecoder(max_frame_size)
        self._routes = routes
        self._fallback = fallback
        self.max_inflight = max_inflight
        self.pending: collections.deque[Call] = collections.deque()

    # -- in ----------------------------------------------------------------------------------------

    def frames(self, data) -> list:
        """The frames completed by ``data`` (raises ProtocolViolation for a bad size)."""
        return self._decoder.feed(data)

    def accept(self, frame, raw_token: bool = False) -> Call:
        """Classify a frame and queue its Call in the answer order. ``raw_token``: the session expects
        a bare SASL token (SaslHandshake v0)."""
        if raw_token:
            call = Call(None, frame, 0, 0)
        else:
            api_key, api_version, correlation_id = messages.peek_header(frame)
            route = self._routes.get(api_key)
            if route is None:
                raise ProtocolViolation(f"unknown or unserved API key {api_key} (version {api_version})")
            entry = route.entry
            if entry.min_version <= api_version <= entry.max_version:
                call = Call(route, frame, api_version, correlation_id)
            elif api_key == messages.API_VERSIONS_KEY and api_version > entry.max_version:  # KIP-511
                call = Call(None, frame, api_version, correlation_id)
                call.chunks, call.ready = self._fallback(correlation_id), True
            else:
                raise ProtocolViolation(f"API key {api_key} version {api_version} is not served "
                                        f"(serving {entry.min_version}-{entry.max_version})")
        self.pending.append(call)
        return call

    # -- out ---------------------------------------------------------------------------------------

    @staticmethod
    def answer(call: Call, response: Any) -> None:
        """The call's response (None: no answer, as for acks=0), framed for its request's version."""
        if response is not None:
            call.chunks = messages.encode_response(call.route.entry.api_key, call.api_version,
                                                   call.correlation_id, response)
        call.ready = True

    @staticmethod
    def answer_raw(call: Call, token: bytes | None) -> None:
        """A raw SASL token's answer: the server token, length-prefixed (None: nothing, the exchange failed)."""
        if token is not None:
            call.chunks = [struct.pack(">i", len(token)) + token]
        call.ready = True

    def next_answer(self) -> Call | None:
        """The oldest request, removed, if its answer is ready: its ``chunks`` go out next."""
        pending = self.pending
        if pending and pending[0].ready:
            return pending.popleft()
        return None

    # -- flow ---------------------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """As many requests in progress as allowed: read no more until answers go out."""
        return len(self.pending) >= self.max_inflight

    @property
    def buffered(self) -> int:
        """Bytes of a frame received only in part."""
        return self._decoder.buffered
