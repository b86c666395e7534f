"""A Pulsar reader on one topic, speaking the binary protocol on the event loop: a non-durable
exclusive subscription that starts at a given entry and delivers whole *entries* (a batch entry is
not split into messages here; entries.py does that where it is needed).

Flow control follows Pulsar's: the reader grants ``receiver_queue`` message permits, and grants the
consumed ones again once half the queue has been taken, so at most about ``receiver_queue``
messages are buffered. When the connection drops or the broker closes the consumer (an unload), the
reader subscribes again just after the last entry it received; nothing is lost or repeated.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ... import metrics
from . import commands as cmd
from .client import WireClient
from .connection import Connection
from .errors import WireError
from .frames import Frame, command

log = logging.getLogger(__name__)

EARLIEST = (-1, -1)
RECONNECT_BACKOFF_S = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
FATAL_ON_SUBSCRIBE = frozenset({"TopicNotFound", "AuthorizationError", "AuthenticationError", "InvalidTopicName",
                                "NotAllowedError", "TopicTerminatedError"})


@dataclass(slots=True)
class Entry:
    ledger_id: int
    entry_id: int
    metadata: dict[str, Any]
    payload: bytes
    broker_index: int | None  # BrokerEntryMetadata.index (the last message's), when the broker adds it
    broker_timestamp: int | None
    received_at: float = 0.0  # monotonic time it arrived (kop/txn/view.py: what a sync covers)

    @property
    def num_messages(self) -> int:
        return self.metadata.get("num_messages_in_batch", 1)

    @property
    def batched(self) -> bool:
        return "num_messages_in_batch" in self.metadata


class WireReader:
    def __init__(self, client: WireClient, topic: str, start: tuple[int, int] = EARLIEST,
                 receiver_queue: int = 64, name: str | None = None, read_compacted: bool = False) -> None:
        self.client = client
        self.topic = topic
        self.read_compacted = read_compacted  # the topic's compacted view (latest entry of each key)
        self.receiver_queue = max(receiver_queue, 2)
        self.subscription = name or f"kop-reader-{uuid.uuid4().hex[:12]}"
        # Where to (re)subscribe: the first entry wanted (inclusive).
        self._start = start
        self.consumer_id = 0
        self.connection: Connection | None = None
        self.failed: WireError | None = None
        self.closed = False
        self._queue: collections.deque[Entry] = collections.deque()
        self._to_grant = 0  # messages taken since permits were last granted
        self._waiter: asyncio.Future | None = None
        self._reconnecting: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> "WireReader":
        await self._subscribe()
        return self

    async def _subscribe(self) -> None:
        connection = await self.client.connection_for(self.topic)
        consumer_id = self.client.new_id()
        ledger, entry = self._start
        # Pulsar 4.0 starts a non-durable cursor at the entry it is given, older brokers just after
        # it: name the entry before, and drop what comes before the start (on_frame).
        start = {"ledgerId": ledger, "entryId": entry - 1} if ledger >= 0 else {"ledgerId": -1, "entryId": -1}
        connection.register("consumer", consumer_id, self)
        try:
            await connection.request(cmd.SUBSCRIBE, {
                "topic": self.topic, "subscription": self.subscription, "subType": cmd.SUB_EXCLUSIVE,
                "consumer_id": consumer_id, "durable": False, "start_message_id": start,
                "initialPosition": cmd.POSITION_EARLIEST, "force_topic_creation": False,
                "read_compacted": self.read_compacted},
                self.client.operation_timeout_s)
        except BaseException:
            connection.unregister("consumer", consumer_id, self)
            raise
        self.consumer_id = consumer_id
        self.connection = connection
        self._to_grant = 0
        permits = self.receiver_queue - sum(e.num_messages for e in self._queue)
        if permits > 0:
            connection.write(command(cmd.FLOW, {"consumer_id": consumer_id, "messagePermits": permits}))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        connection, self.connection = self.connection, None
        if connection is not None and not connection.closed:
            try:
                await connection.request(cmd.CLOSE_CONSUMER, {"consumer_id": self.consumer_id}, 10)
            except (WireError, asyncio.CancelledError) as exc:
                log.debug("closing reader on %s: %r", self.topic, exc)
            connection.unregister("consumer", self.consumer_id, self)
        self._queue.clear()
        self._wake()

    # -- reading --------------------------------------------------------------------------------

    def take(self) -> Entry | None:
        """The next received entry, or None when none is there yet (raises once the reader failed)."""
        if self._queue:
            entry = self._queue.popleft()
            self._granted_back(entry.num_messages)
            return entry
        if self.failed is not None:
            raise self.failed
        return None

    def put_back(self, entry: Entry) -> None:
        """An entry taken but not used: it comes first again (its permits stay counted as taken)."""
        self._queue.appendleft(entry)
        self._to_grant -= entry.num_messages

    def arrival(self) -> asyncio.Future:
        """A future done when an entry is there (or the reader failed)."""
        if self._waiter is None or self._waiter.done():
            self._waiter = asyncio.get_running_loop().create_future()
            if self._queue or self.failed is not None or self.closed:
                self._waiter.set_result(None)
        return self._waiter

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _granted_back(self, messages: int) -> None:
        self._to_grant += messages
        if self._to_grant >= self.receiver_queue // 2 and self.connection is not None:
            self.connection.write(command(cmd.FLOW, {"consumer_id": self.consumer_id,
                                                     "messagePermits": self._to_grant}))
            self._to_grant = 0

    async def last_message_id(self) -> tuple[int, int]:
        """(ledger id, entry id) of the topic's last entry; entry id -1 when it has none."""
        if self.connection is None:
            raise self.failed or WireError("NotConnected", f"reader on {self.topic} is reconnecting")
        frame = await self.connection.request(cmd.GET_LAST_MESSAGE_ID, {"consumer_id": self.consumer_id},
                                              self.client.operation_timeout_s)
        mid = frame.body.get("last_message_id") or {}
        return mid.get("ledgerId", -1), mid.get("entryId", -1)

    # -- from the connection --------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        if frame.type != cmd.MESSAGE or frame.metadata is None:
            return
        mid = frame.body.get("message_id") or {}
        broker = frame.broker_entry or {}
        if not frame.checksum_ok:
            log.warning("entry %s:%s of %s failed its checksum; reading it again", mid.get("ledgerId"),
                        mid.get("entryId"), self.topic)
            if self.connection is not None:
                self.connection.close(WireError("ConnectError", "checksum mismatch"))
            return
        if (mid.get("ledgerId", -1), mid.get("entryId", -1)) < self._start:
            self._granted_back(frame.metadata.get("num_messages_in_batch", 1))
            return  # before the start: the entry in front of it (see _subscribe)
        entry = Entry(mid.get("ledgerId", -1), mid.get("entryId", -1), frame.metadata, frame.payload,
                      broker.get("index"), broker.get("broker_timestamp"), time.monotonic())
        self._queue.append(entry)
        self._start = (entry.ledger_id, entry.entry_id + 1)
        self._wake()

    def on_disconnect(self, connection: Connection) -> None:
        if connection is not self.connection or self.closed:
            return
        self.connection = None
        metrics.PULSAR_RECONNECTS.labels("reader").inc()
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        attempt = 0
        while not self.closed and self.failed is None:
            await asyncio.sleep(RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)])
            attempt += 1
            try:
                await self._subscribe()
                return
            except WireError as exc:
                if exc.name in FATAL_ON_SUBSCRIBE or attempt > 50:
                    log.warning("reader on %s cannot subscribe again: %s", self.topic, exc)
                    self.failed = exc
                    self._wake()
                    return
                log.info("reader on %s: resubscribe attempt %d failed: %s", self.topic, attempt, exc)
            except Exception as exc:
                log.warning("reader on %s: resubscribe attempt %d: %r", self.topic, attempt, exc)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
