"""One Kafka client connection: frames in, handler tasks started in order, responses out in order.

Two kinds of failure (STYLE habit 5): the peer broke the protocol — oversized, negative, truncated
or undecodable frames, an API or version kop does not serve — and the connection is closed with a
log line; or a request failed, and the handler answers with a Kafka error code.

Memory is bounded per connection: a frame's size is checked before it is buffered (framing.py);
at most ``max_inflight_requests`` requests are in progress (reading pauses beyond that); and when
the client stops reading responses, the transport's write buffer fills, ``pause_writing`` fires and
reading pauses too, so a slow reader cannot make kop queue responses without bound. Across
connections (limits.py): connection counts, a budget of queued request bytes, idle connections.

SASL listeners (server/sasl_session.py): before authentication only ApiVersions, SaslHandshake
and SaslAuthenticate are served, anything else closes the connection; after a v0 handshake the next
frame is a raw SASL token, answered with a raw (length-prefixed) token; a failed authentication is
answered and the connection then closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import struct
import time
from typing import Callable

from .. import logs, metrics
from ..protocol import messages
from ..protocol.errors import ErrorCode, ProtocolViolation
from ..protocol.framing import FrameDecoder
from .limits import GatewayLimits

log = logging.getLogger(__name__)

FETCH_KEY, SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY = 1, 17, 36
# What a SASL listener serves before authentication.
_BEFORE_AUTH = frozenset({messages.API_VERSIONS_KEY, SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY})


class KafkaConnection(asyncio.Protocol):
    def __init__(self, *, handlers: dict, make_context: Callable, max_frame_size: int,
                 max_inflight: int, fallback_api_versions: Callable[[int], list[bytes]],
                 on_close: Callable[["KafkaConnection"], None] | None = None,
                 make_session: Callable | None = None, listener=None,
                 on_open: Callable[["KafkaConnection"], None] | None = None,
                 limits: GatewayLimits | None = None) -> None:
        self._handlers = handlers
        self._make_context = make_context
        self._decoder = FrameDecoder(max_frame_size)
        self._max_inflight = max_inflight
        self._fallback = fallback_api_versions
        self._on_close = on_close
        self._pending: collections.deque[asyncio.Future] = collections.deque()
        self._pending_sizes: collections.deque[int] = collections.deque()  # frame bytes, as _pending
        self._pending_written: collections.deque[asyncio.Future | None] = collections.deque()  # fetches only
        self._last_fetch_written: asyncio.Future | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._limits = limits
        self._address: str | None = None  # counted in by the limits while set
        self.last_active = time.monotonic()
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
        self._listener_name = listener.name if listener is not None else "PLAINTEXT"
        self._counted = False  # in kop_connections
        # Request tasks run in copies of this: log lines carry the client (logs.py).
        self._log_context = contextvars.copy_context()
        self._log_info: logs.ConnectionInfo | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if self._limits is not None:
            address = peer[0] if peer else "?"
            refused = self._limits.admit(address)
            if refused is not None:
                log.warning("refusing connection from %s: %s", self._peer, refused)
                metrics.CONNECTIONS_REFUSED.labels("per_address" if "per_address" in refused else "total").inc()
                self._closed = True
                transport.abort()
                return
            self._address = address
        self._counted = True
        metrics.CONNECTIONS.labels(self._listener_name).inc()
        metrics.CONNECTIONS_OPENED.labels(self._listener_name).inc()
        self._set_log_info(logs.ConnectionInfo(self._peer))
        if self._make_session is not None:
            self.session = self._make_session(self._peer, transport)
        if self._on_open is not None:  # registered only once connected (a failed TLS handshake never is)
            self._on_open(self)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.last_active = time.monotonic()
        try:
            for frame in self._decoder.feed(data):
                self._dispatch(frame)
        except ProtocolViolation as exc:
            self.abort(str(exc))

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._counted:
            self._counted = False
            metrics.CONNECTIONS.labels(self._listener_name).dec()
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        for written in self._pending_written:
            if written is not None and not written.done():
                written.set_result(None)
        self._pending_written.clear()
        self._writable.set()  # nothing waits for a closed socket
        if self._limits is not None:
            self._limits.forget(self)
            self._limits.give_back(sum(self._pending_sizes))
            if self._address is not None:
                self._limits.leave(self._address)
                self._address = None
        self._pending_sizes.clear()
        if self.session is not None:
            self.session.close()
        if self._on_close is not None:
            self._on_close(self)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._writable.clear()
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._writable.set()
        self._update_reading()

    # -- requests --------------------------------------------------------------------------------

    def _dispatch(self, frame: bytes) -> None:
        session = self.session
        if session is not None and session.expects_raw_token:
            self._track(self._start(self._raw_token(bytes(frame))), len(frame))
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
        info = self._log_info
        if info is not None and (info.client_id != header.client_id or (
                session is not None and session.authenticated and info.principal is None)):
            principal = session.describe() if session is not None and session.authenticated else None
            self._set_log_info(logs.ConnectionInfo(self._peer, header.client_id, principal))
        started = time.monotonic()
        if entry.immediate:
            self._serve_now(entry, ctx, request, started, len(frame))
        elif api_key == FETCH_KEY:
            previous = self._last_fetch_written
            written = self._last_fetch_written = asyncio.get_running_loop().create_future()
            self._track(self._start(self._run_fetch(previous, entry, ctx, request, started)), len(frame), written)
        else:
            self._track(self._start(self._run(entry, ctx, request, started)), len(frame))

    def _start(self, coro) -> asyncio.Future:
        """A task for ``coro`` running in (a copy of) this connection's logging context."""
        return self._log_context.run(asyncio.ensure_future, coro)

    def _set_log_info(self, info: logs.ConnectionInfo) -> None:
        self._log_info = info
        self._log_context.run(logs.CONNECTION.set, info)

    async def _run_fetch(self, previous: asyncio.Future | None, entry, ctx, request,
                         started: float) -> list[bytes] | None:
        """Fetches of one connection one at a time, each once the previous answer is in the socket's
        buffer and that buffer is below its high-water mark: a client that pipelines fetches and
        never reads the answers holds at most two answers in kop, not one per request in flight.
        (Kafka clients keep one fetch per broker in flight: this costs them nothing.)"""
        if previous is not None:
            await previous
        await self._writable.wait()
        return await self._run(entry, ctx, request, started)

    def _track(self, task: asyncio.Future, size: int = 0, written: asyncio.Future | None = None) -> None:
        """Queue a request's answer in arrival order; it is written once it and all before it are done.
        Its frame's bytes count against the gateway's budget until then; ``written`` is completed
        once its answer is written (or dropped)."""
        self._pending.append(task)
        self._pending_sizes.append(size)
        self._pending_written.append(written)
        if self._limits is not None:
            self._limits.take(size)
        task.add_done_callback(self._flush)
        self._update_reading()

    async def _run(self, entry, ctx, request, started: float) -> list[bytes] | None:
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
        metrics.observe_request(entry.api_key, ctx.version, response, time.monotonic() - started)
        if response is None:  # acks=0 produce: no answer
            return None
        return messages.encode_response(entry.api_key, ctx.version, ctx.header.correlation_id, response)

    def _serve_now(self, entry, ctx, request, started: float, size: int) -> None:
        """An immediate handler (registry.py): called here, in this step; only what it could not
        finish becomes a task."""
        try:
            result = self._log_context.run(entry.serve, ctx, request)
        except Exception:
            log.exception("%s: handler for API %d v%d failed; answering UNKNOWN_SERVER_ERROR", self._peer,
                          entry.api_key, ctx.version)
            result = entry.error_response(request, ErrorCode.UNKNOWN_SERVER_ERROR)
        if asyncio.iscoroutine(result):
            self._track(self._start(self._finish(entry, ctx, request, result, started)), size)
            return
        answer = asyncio.get_running_loop().create_future()
        if isinstance(result, asyncio.Future):
            result.add_done_callback(lambda done: self._answer(answer, entry, ctx, request, done, started))
        else:
            answer.set_result(self._encoded(entry, ctx, result, started))
        self._track(answer, size)

    async def _finish(self, entry, ctx, request, pending, started: float) -> list[bytes] | None:
        try:
            response = await pending
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: handler for API %d v%d failed; answering UNKNOWN_SERVER_ERROR", self._peer,
                          entry.api_key, ctx.version)
            response = entry.error_response(request, ErrorCode.UNKNOWN_SERVER_ERROR)
        return self._encoded(entry, ctx, response, started)

    def _answer(self, answer: asyncio.Future, entry, ctx, request, done: asyncio.Future, started: float) -> None:
        if answer.done():
            return
        if done.cancelled() or done.exception() is not None:
            if not done.cancelled():
                log.error("%s: handler for API %d v%d failed; answering UNKNOWN_SERVER_ERROR", self._peer,
                          entry.api_key, ctx.version, exc_info=done.exception())
            response = entry.error_response(request, ErrorCode.UNKNOWN_SERVER_ERROR)
        else:
            response = done.result()
        answer.set_result(self._encoded(entry, ctx, response, started))

    @staticmethod
    def _encoded(entry, ctx, response, started: float) -> list[bytes] | None:
        metrics.observe_request(entry.api_key, ctx.version, response, time.monotonic() - started)
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
            size, written = self._pending_sizes.popleft(), self._pending_written.popleft()
            if self._limits is not None:
                self._limits.give_back(size)
            if future.cancelled():
                _resolve(written)
                continue
            if future.exception() is not None:
                _resolve(written)
                self.abort("a request failed unexpectedly")
                return
            chunks = future.result()
            if chunks and self._transport is not None:
                self._transport.writelines(chunks)
                self.last_active = time.monotonic()
            _resolve(written)
            self.requests_served += 1
            if self.session is not None and self.session.failed:
                self.abort("SASL authentication failed")  # after its answer was written
                return
        self._update_reading()

    def _update_reading(self) -> None:
        if self._transport is None or self._closed:
            return
        should_pause = len(self._pending) >= self._max_inflight or self._writing_paused
        if self._limits is not None and self._limits.over_budget():
            should_pause = True
            self._limits.wait_for_budget(self)
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
        metrics.CONNECTIONS_CLOSED.labels(_reason_kind(reason)).inc()
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()

    def budget_changed(self) -> None:
        """The gateway's queued-bytes budget has room again (limits.py)."""
        self._update_reading()

    @property
    def idle(self) -> bool:
        return not self._pending

    def idle_for(self, now: float) -> float:
        """Seconds with nothing in flight and nothing received or sent; 0 while a request is in flight."""
        return 0.0 if self._pending else now - self.last_active

    def close_idle(self, idle_s: float) -> None:
        if not self._closed:
            log.info("closing connection from %s: idle for %.0f s (server.connections_max_idle_ms)", self._peer, idle_s)
            metrics.CONNECTIONS_CLOSED.labels("idle").inc()
            self.close()

    async def drain_pending(self, timeout: float) -> None:
        """Let requests already received finish (used on SIGTERM)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)
            await asyncio.sleep(0)  # the done-callbacks write the answers


def _reason_kind(reason: str) -> str:
    """A bounded label for why kop closed a connection."""
    if "SASL" in reason:
        return "authentication"
    if "failed unexpectedly" in reason:
        return "request_failed"
    return "protocol_violation"


def _resolve(future: asyncio.Future | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
