"""The producer of one ``__offsets`` partition and its count of messages awaiting a receipt
(store.py's write path: bounded in flight, sends in call order, failures reported per message)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import _pulsar

from ..backend.plumbing import call_async

log = logging.getLogger(__name__)

# Messages awaiting a Pulsar receipt per __offsets partition; a bound on memory, not a tuning knob.
MAX_IN_FLIGHT = 1000


class StoreError(Exception):
    """A write, read or setup of ``__offsets`` failed. ``result`` is the Pulsar result when there is
    one (so ``kop.backend.errors.kafka_error_of`` maps it like any other Pulsar failure)."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class NotOwner(StoreError):
    """This gateway does not (or no longer) own the ``__offsets`` partition written to."""


class Lane:
    """The producer of one ``__offsets`` partition and its count of messages awaiting a receipt."""
    __slots__ = ("producer", "url", "pending", "failed", "_waiters")

    def __init__(self, producer: _pulsar.Producer, url: str) -> None:
        self.producer = producer
        self.url = url
        self.pending = 0
        self.failed = False
        self._waiters: list[asyncio.Future] = []  # woken on every receipt

    async def _until(self, ready) -> None:
        while not ready():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def room(self, count: int) -> None:
        """Until ``count`` more messages fit (at once when nothing is pending)."""
        await self._until(lambda: not self.pending or self.pending + count <= MAX_IN_FLIGHT)

    async def drained(self) -> None:
        await self._until(lambda: not self.pending)

    def send(self, key: str, value: bytes | None) -> asyncio.Future:
        """Enqueue one message now (synchronously, so call order is send order)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        future.add_done_callback(_retrieve)
        builder = _pulsar.MessageBuilder()
        builder.partition_key(key)
        if value is None:
            builder.content(b"")
            builder.set_null_value()
        else:
            builder.content(value)
        call = loop.call_soon_threadsafe
        self.pending += 1
        try:
            self.producer.send_async(builder.build(), lambda result, _mid: call(self._settle, future, result))
        except Exception as exc:  # the binding refused the call itself
            log.warning("send_async on %s raised %r", self.url, exc)
            self._settle(future, getattr(exc, "result", None) or _pulsar.Result.UnknownError)
        return future

    def _settle(self, future: asyncio.Future, result: Any) -> None:  # on the event loop
        self.pending -= 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if future.done():
            return
        if result == _pulsar.Result.Ok:
            future.set_result(None)
        else:
            self.failed = True
            future.set_exception(StoreError(f"writing to {self.url} failed: {result}", result))

    async def close(self) -> None:
        try:
            await asyncio.wait_for(call_async(self.producer.close_async), 10)
        except Exception as exc:  # best effort: the broker drops it with the connection
            log.debug("closing producer on %s: %r", self.url, exc)


def _retrieve(future: asyncio.Future) -> None:
    """Mark a send's exception as seen: a caller that was cancelled no longer awaits it."""
    if not future.cancelled():
        future.exception()
