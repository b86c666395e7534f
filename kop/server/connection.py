"""One Kafka client connection: frames in, handler tasks started in order, responses out in order.

Two kinds of failure (STYLE habit 5): the peer broke the protocol — oversized, negative, truncated
or undecodable frames, an API or version kop does not serve — and the connection is closed with a
log line; or a request failed, and the handler answers with a Kafka error code.

Memory is bounded per connection: a frame's size is checked before it is buffered (framing.py);
at most ``max_inflight_requests`` requests are in progress (reading pauses beyond that); and when
the client stops reading responses, the transport's write buffer fills, ``pause_writing`` fires and
reading pauses too, so a slow reader cannot make kop queue responses without bound.

SASL listeners (server/sasl_session.py): before authentication only ApiVersions, SaslHandshake
and SaslAuthenticate are served, anything else closes the connection; after a v0 handshake the next
frame is a raw SASL token, answered with a raw (length-prefixed) token; a failed authentication is
answered and the connection then closed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
from typing import Callable

from ..protocol import messages
from ..protocol.errors import ErrorCode, ProtocolViolation
from ..protocol.framing import FrameDecoder

log = logging.getLogger(__name__)

SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY = 17, 36
# What a SASL listener serves before authentication.
_BEFORE_AUTH = frozenset({messages.API_VERSIONS_KEY, SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY})


class KafkaConnection(asyncio.Protocol):
    def __init__(self, *, handlers: dict, make_context: Callable, max_frame_size: int,
                 max_inflight: int, fallback_api_versions: Callable[[int], list[bytes]],
                 on_close: Callable[["KafkaConnection"], None] | None = None,
                 make_session: Callable | None = None, listener=None,
                 on_open: Callable[["KafkaConnection"], None] | None = None) -> None:
        self._handlers = handlers
        self._make_context = make_context
        self._decoder = FrameDecoder(max_frame_size)
        self._max_inflight = max_inflight
        self._fallback = fallback_api_versions
        self._on_close = on_close
        self._pending: collections.deque[asyncio.Future] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False
        self.requests_served = 0
        self._make_session = make_session
        self._on_open = on_open
        self.listener = listener
        self.session = None

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if self._make_session is not None:
            self.session = self._make_session(self._peer, transport)
        if self._on_open is not None:  # registered only once connected (a failed TLS handshake never is)
            self._on_open(self)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            for frame in self._decoder.feed(data):
                self._dispatch(frame)
        except ProtocolViolation as exc:
            self.abort(str(exc))

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self.session is not None:
            self.session.close()
        if self._on_close is not None:
            self._on_close(self)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    # -- requests --------------------------------------------------------------------------------

    def _dispatch(self, frame: bytes) -> None:
        session = self.session
        if session is not None and session.expects_raw_token:
            self._track(asyncio.ensure_future(self._raw_token(bytes(frame))))
            return
        api_key, api_version, correlation_id = messages.peek_header(frame)
        if session is not None and session.required and not session.authenticated and api_key not in _BEFORE_AUTH:
            raise ProtocolViolation(f"API key {api_key} before SASL authentication")
        entry = self._handlers.get(api_key)
        if entry is None:
            raise ProtocolViolation(f"unknown or unserved API key {api_key} (version {api_version})")
        if not entry.serves(api_version):
            if api_key == messages.API_VERSIONS_KEY and api_version > entry.max_version:
                self._queue_ready(self._fallback(correlation_id))  # KIP-511
                return
            raise ProtocolViolation(f"API key {api_key} version {api_version} is not served "
                                    f"(serving {entry.min_version}-{entry.max_version})")
        header, offset = messages.parse_header(frame, messages.is_flexible(api_key, api_version))
        request = messages.decode_request(api_key, api_version, frame, offset)
        ctx = self._make_context(header, self._peer, self.session, self.listener)
        self._track(asyncio.ensure_future(self._run(entry, ctx, request)))

    def _track(self, task: asyncio.Future) -> None:
        """Queue a request's answer in arrival order; it is written once it and all before it are done."""
        self._pending.append(task)
        task.add_done_callback(self._flush)
        self._update_reading()

    async def _run(self, entry, ctx, request) -> list[bytes] | None:
        try:
            response = await entry.serve(ctx, request)
        except asyncio.CancelledError:
            raise
        except Exception:
            if entry.error_response is None:
                log.exception("%s: handler for API %d v%d failed; closing the connection", self._peer,
                              entry.api_key, ctx.version)
                raise
            log.exception("%s: handler for API %d v%d failed; answering UNKNOWN_SERVER_ERROR", self._peer,
                          entry.api_key, ctx.version)
            response = entry.error_response(request, ErrorCode.UNKNOWN_SERVER_ERROR)
        if response is None:  # acks=0 produce: no answer
            return None
        return messages.encode_response(entry.api_key, ctx.version, ctx.header.correlation_id, response)

    async def _raw_token(self, token: bytes) -> list[bytes]:
        """The legacy (SaslHandshake v0) exchange: a bare token in, a length-prefixed token out."""
        error, _message, answer = await self.session.authenticate(token)
        if error:
            return []  # the connection is closed once this is flushed (session.failed)
        return [struct.pack(">i", len(answer)) + answer]

    def _queue_ready(self, chunks: list[bytes]) -> None:
        future = asyncio.get_running_loop().create_future()
        future.set_result(chunks)
        self._track(future)

    def _flush(self, _done: asyncio.Future | None = None) -> None:
        """Write the answers at the head of the queue that are ready (a done-callback of each request:
        no flusher task to wake, one loop step less per request)."""
        while self._pending and self._pending[0].done() and not self._closed:
            future = self._pending.popleft()
            if future.cancelled():
                continue
            if future.exception() is not None:
                self.abort("a request failed unexpectedly")
                return
            chunks = future.result()
            if chunks and self._transport is not None:
                self._transport.writelines(chunks)
            self.requests_served += 1
            if self.session is not None and self.session.failed:
                self.abort("SASL authentication failed")  # after its answer was written
                return
        self._update_reading()

    def _update_reading(self) -> None:
        if self._transport is None or self._closed:
            return
        should_pause = len(self._pending) >= self._max_inflight or self._writing_paused
        if should_pause and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self._transport.resume_reading()
            self._reading_paused = False

    def abort(self, reason: str) -> None:
        if self._closed:
            return
        log.warning("closing connection from %s: %s", self._peer, reason)
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()

    @property
    def idle(self) -> bool:
        return not self._pending

    async def drain_pending(self, timeout: float) -> None:
        """Let requests already received finish (used on SIGTERM)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)
            await asyncio.sleep(0)  # the done-callbacks write the answers

