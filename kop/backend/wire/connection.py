"""One TCP (or TLS) connection to a Pulsar broker, on the event loop.

Why kop speaks Pulsar's binary protocol itself rather than through pulsar-client (the C++ client's
Python binding): that client runs one I/O thread that calls back into Python for every send receipt
and every delivered message, and each call must take the GIL from the event loop. Under a steady
load over many partitions the loop holds the GIL most of the time, the I/O thread waits for it
receipt after receipt, and acknowledgements queue up behind it for seconds (benchmarks/README.md,
"The multi-partition stall"). Here receipts and messages are read by the event loop itself, as
frames from the socket, many per read.

A connection multiplexes requests (matched by request id), producers and consumers (by their ids).
It answers the broker's PINGs and sends its own when the line is quiet; a connection that stays
silent for two keep-alive intervals is closed. When it closes, every pending request fails with
``ConnectError`` and every producer and consumer is told, so they reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from . import commands as cmd
from .errors import WireError, server_error
from .frames import FRAME_OVERHEAD, Frame, FrameDecoder, FrameError, command

log = logging.getLogger(__name__)

CLIENT_VERSION = "kop"
PROTOCOL_VERSION = 21
KEEPALIVE_S = 30.0


class Endpoint(Protocol):
    """A producer or consumer registered on a connection."""

    def on_frame(self, frame: Frame) -> None: ...

    def on_disconnect(self, connection: "Connection") -> None: ...


class Connection(asyncio.Protocol):
    def __init__(self, address: str, auth_token: str = "", proxy_to_broker_url: str | None = None) -> None:
        self.address = address  # host:port, for logs
        self.auth_token = auth_token
        self.proxy_to_broker_url = proxy_to_broker_url
        self.transport: asyncio.Transport | None = None
        self.decoder = FrameDecoder()
        self.connected: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed = False
        self.max_message_size = 5 * 1024 * 1024
        self.server_version = ""
        self._requests: dict[int, asyncio.Future] = {}
        self._next_request_id = 0
        self.endpoints: dict[tuple[str, int], Endpoint] = {}  # ("producer" | "consumer", id) -> endpoint
        self._last_received = time.monotonic()
        self._keepalive: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        # Frames written in one event-loop step leave in one writelines (one system call), not one
        # each: at thousands of entries a second the calls cost more than everything else.
        self._outgoing: list = []
        self._flush_scheduled = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        body: dict[str, Any] = {"client_version": CLIENT_VERSION, "protocol_version": PROTOCOL_VERSION,
                                "feature_flags": {"supports_auth_refresh": True,
                                                  "supports_broker_entry_metadata": True}}
        if self.auth_token:
            body["auth_method_name"] = "token"
            body["auth_data"] = self.auth_token.encode()
        if self.proxy_to_broker_url:
            body["proxy_to_broker_url"] = self.proxy_to_broker_url
        self.transport.write(command(cmd.CONNECT, body))
        self._schedule_keepalive()

    def data_received(self, data: bytes) -> None:
        self._last_received = time.monotonic()
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            log.warning("Pulsar broker %s sent a malformed frame, closing: %s", self.address, exc)
            self.close(WireError("ConnectError", f"malformed frame from {self.address}: {exc}"))
            return
        for frame in frames:
            try:
                self._dispatch(frame)
            except Exception:  # one bad frame must not stop the others, nor the loop
                log.exception("handling a %d frame from %s", frame.type, self.address)

    def connection_lost(self, exc: Exception | None) -> None:
        self._shut(WireError("ConnectError", f"connection to {self.address} lost: {exc or 'closed'}"))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- dispatch --------------------------------------------------------------------------------

    def _dispatch(self, frame: Frame) -> None:
        kind = frame.type
        body = frame.body
        if kind in (cmd.SEND_RECEIPT, cmd.SEND_ERROR):
            endpoint = self.endpoints.get(("producer", body.get("producer_id", -1)))
            if endpoint is not None:
                endpoint.on_frame(frame)
            return
        if kind in (cmd.MESSAGE, cmd.REACHED_END_OF_TOPIC, cmd.ACTIVE_CONSUMER_CHANGE):
            endpoint = self.endpoints.get(("consumer", body.get("consumer_id", -1)))
            if endpoint is not None:
                endpoint.on_frame(frame)
            return
        if kind == cmd.PING:
            self.write(command(cmd.PONG))
            return
        if kind == cmd.PONG:
            return
        if kind == cmd.CONNECTED:
            self.server_version = body.get("server_version", "")
            if body.get("max_message_size"):
                self.max_message_size = body["max_message_size"]
                self.decoder.max_frame_size = self.max_message_size + FRAME_OVERHEAD
            if not self.connected.done():
                self.connected.set_result(self)
            return
        if kind == cmd.AUTH_CHALLENGE:  # the broker refreshes authentication: the same token again
            self.write(command(cmd.AUTH_RESPONSE, {
                "client_version": CLIENT_VERSION, "protocol_version": PROTOCOL_VERSION,
                "response": {"auth_method_name": "token", "auth_data": self.auth_token.encode()}}))
            return
        if kind == cmd.CLOSE_PRODUCER:
            endpoint = self.endpoints.pop(("producer", body.get("producer_id", -1)), None)
            if endpoint is not None:
                endpoint.on_disconnect(self)
            return
        if kind == cmd.CLOSE_CONSUMER:
            endpoint = self.endpoints.pop(("consumer", body.get("consumer_id", -1)), None)
            if endpoint is not None:
                endpoint.on_disconnect(self)
            return
        if kind == cmd.TOPIC_MIGRATED:
            role = "producer" if body.get("resource_type", 0) == 0 else "consumer"
            endpoint = self.endpoints.pop((role, body.get("resource_id", -1)), None)
            if endpoint is not None:
                endpoint.on_disconnect(self)
            return
        if kind == cmd.ERROR and not self.connected.done():  # the handshake was refused
            self.close(server_error(body.get("error", 0), body.get("message", "")))
            return
        request_id = body.get("request_id")
        if request_id is None:
            return
        future = self._requests.get(request_id)
        if future is None or future.done():
            return
        if kind == cmd.PRODUCER_SUCCESS and body.get("producer_ready") is False:
            return  # WaitForExclusive: the producer is registered, not ready; a second answer follows
        del self._requests[request_id]
        if kind == cmd.ERROR:
            future.set_exception(server_error(body.get("error", 0), body.get("message", "")))
        elif kind in (cmd.LOOKUP_RESPONSE, cmd.PARTITIONED_METADATA_RESPONSE) and "error" in body and (
                body.get("response") in (cmd.LOOKUP_FAILED, None) if kind == cmd.LOOKUP_RESPONSE
                else body.get("response") == 1):
            future.set_exception(server_error(body["error"], body.get("message", "")))
        else:
            future.set_result(frame)

    # -- requests --------------------------------------------------------------------------------

    def new_request_id(self) -> int:
        self._next_request_id += 1
        return self._next_request_id

    async def request(self, command_type: int, body: dict[str, Any], timeout: float) -> Frame:
        """Send a command carrying ``request_id`` and wait for its answer (an ERROR raises)."""
        if self.closed:
            raise WireError("ConnectError", f"connection to {self.address} is closed")
        request_id = body.setdefault("request_id", self.new_request_id())
        future = asyncio.get_running_loop().create_future()
        self._requests[request_id] = future
        self.write(command(command_type, body))
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise WireError("Timeout", f"no answer from {self.address} within {timeout:.0f} s") from None
        finally:
            self._requests.pop(request_id, None)

    def write(self, data) -> None:
        if self.transport is not None and not self.closed:
            self._outgoing.append(data)
            self._schedule_flush()

    def write_chunks(self, chunks: list) -> None:
        if self.transport is not None and not self.closed:
            self._outgoing += chunks
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        outgoing, self._outgoing = self._outgoing, []
        if outgoing and self.transport is not None and not self.closed:
            self.transport.writelines(outgoing)

    async def drained(self) -> None:
        """Returns once the transport's buffer is below its high-water mark."""
        await self._writable.wait()

    def register(self, role: str, endpoint_id: int, endpoint: Endpoint) -> None:
        self.endpoints[(role, endpoint_id)] = endpoint

    def unregister(self, role: str, endpoint_id: int, endpoint: Endpoint | None = None) -> None:
        if endpoint is None or self.endpoints.get((role, endpoint_id)) is endpoint:
            self.endpoints.pop((role, endpoint_id), None)

    # -- keep-alive and closing ------------------------------------------------------------------

    def _schedule_keepalive(self) -> None:
        self._keepalive = asyncio.get_running_loop().call_later(KEEPALIVE_S, self._check_alive)

    def _check_alive(self) -> None:
        if self.closed:
            return
        silent = time.monotonic() - self._last_received
        if silent > 2 * KEEPALIVE_S:
            log.warning("Pulsar broker %s silent for %.0f s, closing the connection", self.address, silent)
            self.close(WireError("ConnectError", f"{self.address} stopped answering"))
            return
        if silent > KEEPALIVE_S / 2:
            self.write(command(cmd.PING))
        self._schedule_keepalive()

    def close(self, reason: WireError | None = None) -> None:
        if self.transport is not None:
            self.transport.abort() if reason else self.transport.close()
        self._shut(reason or WireError("AlreadyClosed", f"connection to {self.address} closed"))

    def _shut(self, reason: WireError) -> None:
        if self.closed:
            return
        self.closed = True
        if self._keepalive is not None:
            self._keepalive.cancel()
        if not self.connected.done():
            self.connected.set_exception(reason)
            self.connected.exception()  # retrieved: a failed connect is reported by whoever awaited it
        for future in self._requests.values():
            if not future.done():
                future.set_exception(reason)
        self._requests.clear()
        endpoints, self.endpoints = list(self.endpoints.values()), {}
        for endpoint in endpoints:
            try:
                endpoint.on_disconnect(self)
            except Exception:
                log.exception("telling an endpoint of %s about the disconnect", self.address)
        self._writable.set()
