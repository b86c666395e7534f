"""One Kafka client connection: the asyncio driver of its exchange (exchange.py) and pipeline (pipeline.py).

This module does the I/O and the bookkeeping around it; what the bytes mean is exchange.py's (framing,
the KIP-511 fallback, answers in request order), what happens to a request is pipeline.py's (SASL
gating, decoding, metrics, error fallback, group authorization, serialized APIs).

Two kinds of failure (STYLE habit 5): the peer broke the protocol — oversized, negative, truncated
or undecodable frames, an API or version kop does not serve, a request before SASL authentication —
and the connection is closed with a log line; or a request failed, and the handler answers with a
Kafka error code.

Memory is bounded per connection: a frame's size is checked before it is buffered; at most
``max_inflight`` requests are in progress (reading pauses beyond that); and when the client stops
reading responses, the transport's write buffer fills, ``pause_writing`` fires and reading pauses
too, so a slow reader cannot make kop queue responses without bound. Across connections
(limits.py): connection counts, a budget of queued request bytes, idle connections.

SASL listeners (server/sasl_session.py): after a v0 handshake the next frame is a raw SASL token,
answered with a raw (length-prefixed) token; a failed authentication is answered and the connection
then closed.

Each request runs within the step that decoded it as far as it can: a handler that completes at
once (or an ``immediate`` one, Produce, whose answer is a future) takes no task and no extra loop
step; only coroutines become tasks. A request's answer is written by the callback that completes
it, when every earlier answer is out.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .. import logs, metrics
from ..protocol.errors import ProtocolViolation
from .exchange import Call, Exchange
from .limits import GatewayLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Wiring:
    """What every connection of one listener shares."""

    routes: Mapping[int, Any]  # api_key -> its route through the pipeline (pipeline.py)
    fallback: Callable[[int], list[bytes]]  # the KIP-511 ApiVersions answer, by correlation id
    max_frame_size: int
    max_inflight: int
    limits: GatewayLimits | None = None
    listener: Any = None  # server/listeners.Listener
    make_session: Callable | None = None  # (peer, transport) -> SaslSession
    on_open: Callable[["KafkaConnection"], None] | None = None  # once connected (a failed TLS handshake never is)
    on_close: Callable[["KafkaConnection"], None] | None = None


class KafkaConnection(asyncio.Protocol):
    def __init__(self, wiring: Wiring) -> None:
        self._wiring = wiring
        self._exchange = Exchange(wiring.routes, wiring.max_frame_size, wiring.max_inflight, wiring.fallback)
        self._limits = wiring.limits
        self.listener = wiring.listener
        self._listener_name = wiring.listener.name if wiring.listener is not None else "PLAINTEXT"
        self.session = None
        self.peer = "?"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.last_active = time.monotonic()
        self.requests_served = 0
        # Serialized APIs (pipeline.Serialize): the last one's answer written, and a socket taking more.
        self.last_serialized: asyncio.Future | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self._transport: asyncio.Transport | None = None
        self._address: str | None = None  # counted in by the limits while set
        self._counted = False  # in kop_connections
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False
        # Requests run in copies of this: log lines carry the client (logs.py).
        self._log_context = contextvars.copy_context()
        self._log_info: logs.ConnectionInfo | None = None
        self._begin = self._begin  # bound once: data_received passes it on for every request

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if self._limits is not None:
            address = peer[0] if peer else "?"
            refused = self._limits.admit(address)
            if refused is not None:
                log.warning("refusing connection from %s: %s", self.peer, refused)
                metrics.CONNECTIONS_REFUSED.labels(refused.kind).inc()
                self._closed = True
                transport.abort()
                return
            self._address = address
        self._counted = True
        metrics.CONNECTIONS.labels(self._listener_name).inc()
        metrics.CONNECTIONS_OPENED.labels(self._listener_name).inc()
        self._set_log_info(logs.ConnectionInfo(self.peer))
        if self._wiring.make_session is not None:
            self.session = self._wiring.make_session(self.peer, transport)
        if self._wiring.on_open is not None:
            self._wiring.on_open(self)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.last_active = time.monotonic()
        exchange, limits, session = self._exchange, self._limits, self.session
        try:
            for frame in exchange.frames(data):
                call = exchange.accept(frame, session is not None and session.expects_raw_token)
                call.conn = self
                if limits is not None:
                    limits.take(call.size)
                if call.route is not None:
                    self._log_context.run(self._begin, call)
                elif not call.ready:
                    self._authenticate_raw(call)
        except ProtocolViolation as exc:
            self.abort("protocol_violation", str(exc))
            return
        self._flush()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._counted:
            self._counted = False
            metrics.CONNECTIONS.labels(self._listener_name).dec()
        pending = self._exchange.pending
        for call in pending:
            if call.task is not None:
                call.task.cancel()
            _resolve(call.written)
        self.writable.set()  # nothing waits for a closed socket
        if self._limits is not None:
            self._limits.forget(self)
            self._limits.give_back(sum(call.size for call in pending))
            if self._address is not None:
                self._limits.leave(self._address)
                self._address = None
        pending.clear()
        if self.session is not None:
            self.session.close()
        if self._wiring.on_close is not None:
            self._wiring.on_close(self)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self.writable.clear()
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self.writable.set()
        self._update_reading()

    # -- requests --------------------------------------------------------------------------------

    def _begin(self, call: Call) -> None:
        """Through the pipeline, within this step as far as the handler goes; what it could not finish
        completes through :meth:`settle`. Runs in the connection's logging context (so do the tasks
        and callbacks it starts)."""
        result = call.route.start(call)
        if call.error is None:
            if isinstance(result, asyncio.Future):
                call.task = result
                result.add_done_callback(call)
                return
            if asyncio.iscoroutine(result):
                call.task = asyncio.ensure_future(result)
                call.task.add_done_callback(call)
                return
        self._answer(call, result)

    def _authenticate_raw(self, call: Call) -> None:
        """The legacy (SaslHandshake v0) exchange: a bare token in, a length-prefixed token out."""
        call.task = self._log_context.run(asyncio.ensure_future, self.session.authenticate(bytes(call.frame)))
        call.task.add_done_callback(call)

    def settle(self, call: Call, done: asyncio.Future) -> None:
        """What ran for ``call`` is done (its done-callback, through Call.__call__)."""
        if done.cancelled():
            return  # the connection is gone
        exc = done.exception()
        if call.route is None:  # a raw SASL token
            if exc is not None:
                log.error("%s: SASL authentication failed unexpectedly; closing the connection", self.peer, exc_info=exc)
                self.abort("request_failed", "a request failed unexpectedly")
                return
            error, _message, token = done.result()
            self._exchange.answer_raw(call, None if error else token)  # on failure: closed once flushed
        else:
            if exc is not None:
                call.error = exc
            self._answer(call, None if exc is not None else done.result())
        self._flush()

    def _answer(self, call: Call, result: Any) -> None:
        try:
            self._exchange.answer(call, call.route.finish(call, result))
        except Exception:  # no error answer for this API, or one that does not encode
            if call.error is None:
                log.exception("%s: the answer to API %d v%d failed; closing the connection", self.peer,
                              call.route.entry.api_key, call.api_version)
            self.abort("request_failed", "a request failed unexpectedly")

    def identify(self, header) -> None:
        """Log lines name the client's id, and its principal once authenticated (pipeline.Decode, within
        the connection's logging context)."""
        info, session = self._log_info, self.session
        if info is not None and (info.client_id != header.client_id or (
                session is not None and session.authenticated and info.principal is None)):
            principal = session.describe() if session is not None and session.authenticated else None
            self._log_info = info = logs.ConnectionInfo(self.peer, header.client_id, principal)
            logs.CONNECTION.set(info)

    def _set_log_info(self, info: logs.ConnectionInfo) -> None:
        self._log_info = info
        self._log_context.run(logs.CONNECTION.set, info)

    def _flush(self) -> None:
        """Write the answers at the head of the queue that are ready, in request order."""
        exchange, limits, transport = self._exchange, self._limits, self._transport
        while not self._closed:
            call = exchange.next_answer()
            if call is None:
                break
            if limits is not None:
                limits.give_back(call.size)
            if call.chunks and transport is not None:
                transport.writelines(call.chunks)
                self.last_active = time.monotonic()
            _resolve(call.written)
            self.requests_served += 1
            if self.session is not None and self.session.failed:
                self.abort("authentication", "SASL authentication failed")  # after its answer was written
                return
        self._update_reading()

    def _update_reading(self) -> None:
        if self._transport is None or self._closed:
            return
        should_pause = self._exchange.full or self._writing_paused
        if self._limits is not None and self._limits.over_budget():
            should_pause = True
            self._limits.wait_for_budget(self)
        if should_pause and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self._transport.resume_reading()
            self._reading_paused = False

    # -- closing ----------------------------------------------------------------------------------

    def abort(self, kind: str, reason: str) -> None:
        """Close the connection, saying why; ``kind`` labels kop_connections_closed_by_kop."""
        if self._closed:
            return
        log.warning("closing connection from %s: %s", self.peer, reason)
        metrics.CONNECTIONS_CLOSED.labels(kind).inc()
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
        return not self._exchange.pending

    def idle_for(self, now: float) -> float:
        """Seconds with nothing in flight and nothing received or sent; 0 while a request is in flight."""
        return 0.0 if self._exchange.pending else now - self.last_active

    def close_idle(self, idle_s: float) -> None:
        if not self._closed:
            log.info("closing connection from %s: idle for %.0f s (server.connections_max_idle_ms)", self.peer, idle_s)
            metrics.CONNECTIONS_CLOSED.labels("idle").inc()
            self.close()

    async def drain_pending(self, timeout: float) -> None:
        """Let requests already received finish (used on SIGTERM)."""
        running = [call.task for call in self._exchange.pending if call.task is not None]
        if running:
            await asyncio.wait(running, timeout=timeout)
            await asyncio.sleep(0)  # the done-callbacks write the answers


def _resolve(future: asyncio.Future | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
