"""A Pulsar producer on one (non-partitioned) topic, speaking the binary protocol on the event loop.

Each :meth:`WireProducer.send` is one Pulsar entry: a single message, or a batch the caller built
(entries.py). It is written to the socket at once, in call order, and its callback gets the entry's
(ledger id, entry id) when the broker's receipt arrives, within the step that reads the receipt (no
future, no extra loop step: kop writes thousands of entries a second); receipts come in order.

When the connection drops or the broker closes the producer (a topic unload, a broker restart), the
producer looks the topic up again, registers again under the same name and resends every entry still
awaiting its receipt, in order, with their original sequence ids, as Pulsar's own clients do. An
entry the broker had stored before the drop may thus be stored twice: backend/resends.py covers the
idempotent case. What cannot be sent within ``send_timeout_s`` fails with ``Timeout``; a producer
whose registration is refused for good (fenced, topic deleted, not authorized) fails its pending
entries and stays failed: the owner opens a new one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from typing import Callable

from ... import metrics
from . import commands as cmd
from .client import WireClient
from .connection import Connection
from .errors import WireError
from .frames import Frame, command, payload_frame, send_command
from .proto import write_varint

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_S = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
BUSY_RETRIES = 8  # reconnect attempts a ProducerBusy answer is retried (about 15 s)
# Registration failures that end a producer (its owner may open a new one).
FATAL_ON_REGISTER = frozenset({"ProducerFenced", "ProducerBusy", "TopicTerminatedError", "TopicNotFound",
                               "AuthorizationError", "AuthenticationError", "InvalidTopicName", "NotAllowedError",
                               "ProducerBlockedQuotaExceededException", "ProducerBlockedQuotaExceededError",
                               "IncompatibleSchema"})


@dataclass(slots=True)
class _Pending:
    sequence_id: int
    num_messages: int
    metadata: bytes  # the whole MessageMetadata, name and sequence id included
    payload: bytes
    done: Callable[[tuple[int, int] | WireError], None]
    queued_at: float


class WireProducer:
    def __init__(self, client: WireClient, topic: str, *, name: str | None = None,
                 access_mode: int = cmd.SHARED, send_timeout_s: float = 30.0,
                 metadata: dict[str, str] | None = None) -> None:
        self.client = client
        self.topic = topic
        self.metadata = metadata or {}  # the producer's properties, shown in the topic's stats
        self.name = name or ""
        self._user_named = name is not None
        self.access_mode = access_mode
        self.send_timeout_s = send_timeout_s
        self.producer_id = 0
        self.connection: Connection | None = None
        self.failed: WireError | None = None
        self.closed = False
        self._topic_epoch: int | None = None
        self._next_sequence = 0
        self._pending: collections.deque[_Pending] = collections.deque()
        self._name_field = b""
        self._reconnecting: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> "WireProducer":
        """Register on the topic's broker; raises WireError when Pulsar refuses."""
        await self._register()
        self._arm_timer()
        return self

    async def _register(self) -> None:
        connection = await self.client.connection_for(self.topic)
        producer_id = self.client.new_id()
        body = {"topic": self.topic, "producer_id": producer_id, "producer_access_mode": self.access_mode,
                "user_provided_producer_name": self._user_named}
        if self.name:
            body["producer_name"] = self.name
        if self.metadata:
            body["metadata"] = [{"key": k, "value": v} for k, v in self.metadata.items()]
        if self._topic_epoch is not None:
            body["topic_epoch"] = self._topic_epoch
        connection.register("producer", producer_id, self)  # receipts may follow the answer at once
        try:
            frame = await connection.request(cmd.PRODUCER, body, self.client.operation_timeout_s)
        except BaseException:
            connection.unregister("producer", producer_id, self)
            raise
        answer = frame.body
        self.name = answer.get("producer_name", self.name)
        self._name_field = _string_field(1, self.name)
        if "topic_epoch" in answer:
            self._topic_epoch = answer["topic_epoch"]
        self.producer_id = producer_id
        self.connection = connection
        for pending in self._pending:  # resend, in order, what awaited its receipt
            connection.write_chunks(self._frame(pending))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        connection, self.connection = self.connection, None
        if connection is not None and not connection.closed:
            try:
                await connection.request(cmd.CLOSE_PRODUCER, {"producer_id": self.producer_id}, 10)
            except (WireError, asyncio.CancelledError) as exc:
                log.debug("closing producer on %s: %r", self.topic, exc)
            connection.unregister("producer", self.producer_id, self)
        self._fail_all(WireError("AlreadyClosed", f"producer on {self.topic} closed"))

    # -- sending --------------------------------------------------------------------------------

    def send(self, metadata_fields: bytes, payload: bytes, num_messages: int = 1) -> asyncio.Future:
        """:meth:`write` with a future of (ledger id, entry id) instead of a callback."""
        future = asyncio.get_running_loop().create_future()

        def done(result) -> None:
            if future.done():
                return
            if isinstance(result, WireError):
                future.set_exception(result)
            else:
                future.set_result(result)
        self.write(metadata_fields, payload, num_messages, done)
        return future

    def write(self, metadata_fields: bytes, payload: bytes, num_messages: int,
              done: Callable[[tuple[int, int] | WireError], None]) -> None:
        """Write one entry now; ``done`` gets (ledger id, entry id), or the WireError that ended it
        (possibly before this returns).

        ``metadata_fields`` are the encoded MessageMetadata fields besides producer_name,
        sequence_id and publish_time, which are added here."""
        if self.failed is not None or self.closed:
            _call(done, self.failed or WireError("AlreadyClosed", f"producer on {self.topic} closed"))
            return
        sequence_id = self._next_sequence
        self._next_sequence += 1
        metadata = bytearray(self._name_field)
        metadata.append(0x10)
        write_varint(metadata, sequence_id)
        metadata.append(0x18)
        write_varint(metadata, int(time.time() * 1000))
        metadata += metadata_fields
        limit = self.connection.max_message_size if self.connection is not None else 5 * 1024 * 1024
        if len(payload) + len(metadata) > limit:
            _call(done, WireError("MessageTooBig", f"{len(payload)} bytes exceed {limit}"))
            return
        pending = _Pending(sequence_id, num_messages, bytes(metadata), payload, done, time.monotonic())
        self._pending.append(pending)
        if self.connection is not None:
            self.connection.write_chunks(self._frame(pending))

    def _frame(self, pending: _Pending) -> list:
        return payload_frame(send_command(self.producer_id, pending.sequence_id, pending.num_messages),
                             pending.metadata, pending.payload)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # -- from the connection --------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        body = frame.body
        sequence_id = body.get("sequence_id", -1)
        if frame.type == cmd.SEND_RECEIPT:
            pending = self._pending
            if not pending or sequence_id < pending[0].sequence_id:
                return  # a receipt for an entry already answered (a resend's)
            if sequence_id > pending[0].sequence_id:
                # A receipt skipped an entry: resynchronise by reconnecting (resends the rest).
                log.warning("receipt %d on %s while %d awaited one; reconnecting", sequence_id, self.topic,
                            pending[0].sequence_id)
                self.connection.close(WireError("ConnectError", "receipts out of order"))
                return
            head = pending.popleft()
            mid = body.get("message_id") or {}
            _call(head.done, (mid.get("ledgerId", -1), mid.get("entryId", -1)))
            return
        # SEND_ERROR: a corrupt entry is dropped; anything else resends through a new connection.
        error = cmd.SERVER_ERRORS.get(body.get("error", 0), "UnknownError")
        log.warning("Pulsar refused entry %d on %s: %s %s", sequence_id, self.topic, error, body.get("message", ""))
        if error == "ChecksumError" and self._pending and self._pending[0].sequence_id == sequence_id:
            head = self._pending.popleft()
            _call(head.done, WireError(error, body.get("message", "")))
            return
        if self.connection is not None:
            self.connection.close(WireError("ConnectError", f"send error {error}"))

    def on_disconnect(self, connection: Connection) -> None:
        if connection is not self.connection or self.closed:
            return
        self.connection = None
        metrics.PULSAR_RECONNECTS.labels("producer").inc()
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        attempt = 0
        while not self.closed and self.failed is None:
            delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await self._register()
                return
            except WireError as exc:
                # Our own previous registration may linger until the broker notices the old
                # connection is gone: ProducerBusy is given a few tries before it is final.
                if exc.name in FATAL_ON_REGISTER and not (exc.name == "ProducerBusy" and attempt < BUSY_RETRIES):
                    log.warning("producer on %s cannot register again: %s", self.topic, exc)
                    self._fail(exc)
                    return
                log.info("producer on %s: reconnect attempt %d failed: %s", self.topic, attempt, exc)
            except Exception as exc:  # never leave the reconnect loop on an unexpected error
                log.warning("producer on %s: reconnect attempt %d: %r", self.topic, attempt, exc)

    # -- timeouts and failure -------------------------------------------------------------------

    def _arm_timer(self) -> None:
        if not self.closed:
            self._timer = asyncio.get_running_loop().call_later(1.0, self._check_timeouts)

    def _check_timeouts(self) -> None:
        if self._pending and time.monotonic() - self._pending[0].queued_at > self.send_timeout_s:
            self._fail(WireError("Timeout", f"no receipt from Pulsar within {self.send_timeout_s:.0f} s "
                                            f"on {self.topic}"))
            return
        self._arm_timer()

    def _fail(self, error: WireError) -> None:
        """The producer is done for: fail what is pending, let go of the connection."""
        self.failed = error
        if self._timer is not None:
            self._timer.cancel()
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.unregister("producer", self.producer_id, self)
            if not connection.closed:
                connection.write(_close_producer(connection, self.producer_id))
        self._fail_all(error)

    def _fail_all(self, error: WireError) -> None:
        pending, self._pending = self._pending, collections.deque()
        for item in pending:
            _call(item.done, error)


def _call(done, result) -> None:
    """An entry's callback; one that raises must not stop the others, nor the producer."""
    try:
        done(result)
    except Exception:
        log.exception("an entry's callback failed")


def _string_field(number: int, value: str) -> bytes:
    data = value.encode()
    out = bytearray()
    write_varint(out, number << 3 | 2)
    write_varint(out, len(data))
    return bytes(out) + data


def _close_producer(connection: Connection, producer_id: int) -> bytes:
    return command(cmd.CLOSE_PRODUCER, {"producer_id": producer_id, "request_id": connection.new_request_id()})
