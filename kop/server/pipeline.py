"""The request pipeline: what happens to a request between its frame and its handler, as an ordered
chain of links (Kroxylicious' filters).

Each link is entered with the request's :class:`~kop.server.exchange.Call` and ``next``, the rest of
the chain: it may pass the call on (``return next(call)``), answer it itself, or refuse it
(ProtocolViolation closes the connection). A link may also leave a mark on the way out
(``leave(call, response) -> response``), run innermost first once the response is known. The
chain of each API is built once, from its registry flags (handlers/registry.py), so the connection
knows no API numbers, and a link absent from an API's chain costs it nothing.

In order, outermost first:

1. :class:`SaslGate` — on a SASL listener, before authentication, only ``before_auth`` APIs; any
   other request closes the connection *before its body is decoded* (as Kafka's broker: less of the
   protocol is exposed to a client that has not authenticated).
2. :class:`Decode` — the header and body, and the handler's RequestContext.
3. :class:`Metrics` — request counts, errors and latency (kop_requests...), of the answer sent.
4. :class:`ErrorFallback` — a handler that fails unexpectedly is answered UNKNOWN_SERVER_ERROR in its
   API's shape, with the traceback logged; the connection stays usable. An API without an
   ``error_response`` closes the connection instead.
5. :class:`GroupAuthorization` — ``group_api``: GROUP_AUTHORIZATION_FAILED for a principal Pulsar does
   not let use its namespace (registry.py says why).
6. :class:`Serialize` — ``serialized``: one at a time per connection, each once the previous answer
   is in the socket's buffer and the buffer is below its high-water mark.

What a link returns, and the chain, is the handler's result: the response, a future of it, or a
coroutine. Nothing here awaits or allocates on the way of a request that needs neither (Produce):
``immediate`` handlers are called within the loop step that decoded their request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .. import metrics
from ..protocol import messages
from ..protocol.errors import ErrorCode, ProtocolViolation
from .exchange import Call

log = logging.getLogger("kop.server.connection")

Next = Callable[[Call], Any]


class Link:
    """One link of the chain. Subclasses override :meth:`enter` and, when they act on the way out,
    :meth:`leave`."""

    def applies(self, entry) -> bool:
        """Whether this link is part of the chain of the API of registry ``entry``."""
        return True

    def enter(self, call: Call, next: Next) -> Any:  # noqa: A002 (Kroxylicious' name for it)
        return next(call)

    def leave(self, call: Call, response: Any) -> Any:
        return response


class SaslGate(Link):
    def applies(self, entry) -> bool:
        return not entry.before_auth

    def enter(self, call: Call, next: Next) -> Any:  # noqa: A002
        session = call.conn.session
        if session is not None and session.required and not session.authenticated:
            raise ProtocolViolation(f"API key {call.route.entry.api_key} before SASL authentication")
        return next(call)


class Decode(Link):
    def __init__(self, make_context: Callable) -> None:
        """``make_context(header, peer, session, listener)``: the handler's RequestContext."""
        self._make_context = make_context

    def enter(self, call: Call, next: Next) -> Any:  # noqa: A002
        api_key, frame = call.route.entry.api_key, call.frame
        header, offset = messages.parse_header(frame, messages.is_flexible(api_key, call.api_version))
        call.request = messages.decode_request(api_key, call.api_version, frame, offset)
        conn = call.conn
        call.ctx = self._make_context(header, conn.peer, conn.session, conn.listener)
        conn.identify(header)
        return next(call)


class Metrics(Link):
    def enter(self, call: Call, next: Next) -> Any:  # noqa: A002
        call.started = time.monotonic()
        return next(call)

    def leave(self, call: Call, response: Any) -> Any:
        metrics.observe_request(call.route.entry.api_key, call.api_version, response, time.monotonic() - call.started)
        return response


class ErrorFallback(Link):
    def enter(self, call: Call, next: Next) -> Any:  # noqa: A002
        try:
            return next(call)
        except ProtocolViolation:
            raise
        except Exception as exc:  # answered on the way out, as a failure that comes later is
            call.error = exc
            return None

    def leave(self, call: Call, response: Any) -> Any:
        exc = call.error
        if exc is None:
            return response
        entry = call.route.entry
        if entry.error_response is None:
            log.error("%s: handler for API %d v%d failed; closing the connection", call.conn.peer, entry.api_key,
                      call.api_version, exc_info=exc)
            raise exc
        log.error("%s: handler for API %d v%d failed; answering UNKNOWN_SERVER_ERROR", call.conn.peer,
                  entry.api_key, call.api_version, exc_info=exc)
        call.error = None
        return entry.error_response(call.request, ErrorCode.UNKNOWN_SERVER_ERROR)


class GroupAuthorization(Link):
    def applies(self, entry) -> bool:
        return entry.group_api

    def enter(self, call: Call, next: Next) -> Any:  # noqa: A002
        ctx = call.ctx
        session = ctx.session
        if session is not None and not session.groups_allowed:
            log.warning("%s (%s): group request refused (GROUP_AUTHORIZATION_FAILED): Pulsar does not let its "
                        "role use namespace %s", ctx.client_address, session.describe(), ctx.backend.namespace.path)
            return call.route.entry.error_response(call.request, ErrorCode.GROUP_AUTHORIZATION_FAILED)
        return next(call)


class Serialize(Link):
    def applies(self, entry) -> bool:
        return entry.serialized

    def enter(self, call: Call, next: Next) -> Any:  # noqa: A002
        conn = call.conn
        previous = conn.last_serialized
        call.written = conn.last_serialized = conn.loop.create_future()
        return self._in_turn(call, next, previous)

    @staticmethod
    async def _in_turn(call: Call, next: Next, previous) -> Any:  # noqa: A002
        """A client that pipelines such requests and never reads the answers holds at most two answers
        in kop, not one per request in flight. (Kafka clients keep one fetch per broker in flight: this
        costs them nothing.)"""
        if previous is not None:
            await previous
        await call.conn.writable.wait()
        result = next(call)
        return await result if hasattr(result, "__await__") else result


@dataclass(frozen=True, slots=True)
class Route:
    """An API's registry entry and its chain: ``start`` on the way in (to the handler), ``finish``
    on the way out (the response, from the handler's result)."""

    entry: Any
    start: Callable[[Call], Any]
    finish: Callable[[Call, Any], Any]
    links: tuple[Link, ...] = ()  # the chain, outermost first


class Pipeline:
    def __init__(self, links: Sequence[Link]) -> None:
        self.links = tuple(links)

    @classmethod
    def standard(cls, make_context: Callable) -> "Pipeline":
        return cls([SaslGate(), Decode(make_context), Metrics(), ErrorFallback(), GroupAuthorization(), Serialize()])

    def routes(self, handlers: Mapping[int, Any]) -> dict[int, Route]:
        return {api_key: self.route(entry) for api_key, entry in handlers.items()}

    def route(self, entry) -> Route:
        chain = [link for link in self.links if link.applies(entry)]
        start: Next = _handler(entry.serve)
        for link in reversed(chain):
            start = _entering(link.enter, start)
        finish = None
        for link in reversed(chain):  # composed innermost first: the innermost link leaves first
            if type(link).leave is not Link.leave:
                finish = link.leave if finish is None else _leaving(link.leave, finish)
        return Route(entry, start, finish or _response, tuple(chain))


def _handler(serve) -> Next:
    def handle(call: Call) -> Any:
        return serve(call.ctx, call.request)
    return handle


def _entering(enter, inner: Next) -> Next:
    def entered(call: Call) -> Any:
        return enter(call, inner)
    return entered


def _response(call: Call, response: Any) -> Any:
    return response


def _leaving(leave, inner: Callable[[Call, Any], Any]) -> Callable[[Call, Any], Any]:
    def left(call: Call, response: Any) -> Any:
        return leave(call, inner(call, response))
    return left
