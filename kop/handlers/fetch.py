"""Fetch (key 1), versions 4-12.

Every requested partition is read from a Pulsar reader standing at the fetch offset (cached from the
previous fetch when possible, see backend/reader.py). The answer goes out as soon as ``min_bytes``
are gathered, or when ``max_wait_ms`` has passed; while waiting, kop awaits the readers themselves,
so data written by *any* producer — kop, a native Pulsar producer, another gateway — wakes it.
Sizes honour ``partition_max_bytes`` and ``max_bytes``, except that the first batch is returned
whole even when larger (KIP-74), so a consumer can never get stuck behind a large batch.

Deviations from Kafka:
- Served up to v12: v13+ name topics by id, which kop does not keep (see metadata.py).
- No incremental fetch sessions (KIP-227): ``session_id`` 0 tells clients to send full requests.
- ``read_committed`` (``isolation_level`` 1) is served from the view of ``__transactions`` every
  gateway keeps (kop/txn/view.py): nothing at or past the last stable offset, the aborted
  transactions overlapping the answer listed, as Kafka's broker answers. The last stable offset is
  a transaction's *start bound* (its partition's log end when the partition joined it), at or below
  its first record there: a consumer may wait a little longer than on Kafka, never see less. A
  transactional batch the view cannot account for makes the fetch wait for ``__transactions``
  first (view.py says why that is enough).
- Contiguous offsets (the default, backend/entry_index.py): OFFSET_OUT_OF_RANGE past the high
  watermark and below the log start (the first readable entry, or where DeleteRecords moved it),
  as Kafka answers. With ``offsets.mode = "packed"`` offsets are packed Pulsar positions
  (mapping/offsets.py): a fetch offset that names no record continues at the next one, and
  OFFSET_OUT_OF_RANGE is returned only below the log start a DeleteRecords set (backend/log_start.py):
  an offset beyond the end simply waits.
- ``high_watermark`` is the highest end offset this gateway has seen written or read; it can lag
  writes made through another path until they are read.
- ``max_bytes`` is capped at ``fetch.max_response_bytes`` (55 MiB, the default of Kafka's broker
  setting ``fetch.max.bytes``), and one connection's fetches are served one at a time
  (``serialized``, server/pipeline.py): a client that never reads its answers cannot pile them up in kop.
- An idempotent batch that Pulsar holds twice (the Pulsar client resent it after a reconnect,
  backend/resends.py) is answered the second time as an empty batch over the same offsets, as
  Kafka's log cleaner leaves them: consumers step over it and read its records once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .. import metrics
from ..backend.api import PartitionLog, PartitionReader, cached_log_start, kafka_error_of
from ..mapping import offsets
from ..mapping.topics import InvalidTopicName, check_kafka_name
from ..protocol.errors import ErrorCode, KafkaError
from ..protocol.fetch_response import FetchableTopicResponse, FetchResponseData, PartitionData
from .registry import handler

API_KEY = 1
# How long a fetch with a short max_wait_ms still waits for records known to exist (see serve()).
KNOWN_DATA_GRACE_S = 1.0
# How long an answer that has data waits for partitions whose records exist but whose readers,
# freshly opened, have not received them yet (see serve() and _lagging()).
FRESH_READER_GRACE_S = 0.2
log = logging.getLogger(__name__)


class _Slot:
    __slots__ = ("topic", "partition", "offset", "max_bytes", "log", "reader", "error", "chunks", "size", "records",
                 "key", "stalled")

    def __init__(self, topic: str, partition: int, offset: int, max_bytes: int) -> None:
        self.topic, self.partition, self.offset, self.max_bytes = topic, partition, offset, max_bytes
        self.log: PartitionLog | None = None
        self.reader: PartitionReader | None = None
        self.error = ErrorCode.NONE
        self.chunks: list = []  # bytes-like pieces, written to the socket as they are
        self.size = 0
        self.records = 0
        self.key: tuple[str, str, int] = ("", topic, partition)  # kop/txn's name of the partition
        self.stalled = False  # read_committed: entries received, none answerable yet


@handler(API_KEY, 4, 12, serialized=True)
async def serve(ctx, request):
    backend = ctx.backend
    wait_s = min(max(request.max_wait_ms, 0), ctx.config.fetch.max_wait_cap_ms) / 1000
    max_bytes = min(request.max_bytes, ctx.config.fetch.max_response_bytes)
    started = time.monotonic()
    deadline = started + wait_s
    slots = [_Slot(t.topic, p.partition, p.fetch_offset, p.partition_max_bytes)
             for t in request.topics for p in t.partitions]
    view = ctx.txn_view
    committed = view is not None and request.isolation_level == 1
    for slot in slots:
        slot.key = (backend.namespace.path, slot.topic, slot.partition)
    waited_since = None
    try:
        await asyncio.gather(*(_open(backend, slot) for slot in slots))
        total = 0
        while True:
            unexplained = False
            for slot in slots:
                if slot.reader is None or total >= max_bytes and total > 0:
                    continue
                budget = min(slot.max_bytes - slot.size, max_bytes - total)
                if budget <= 0:
                    continue
                upto = admit = None
                if committed:
                    upto = view.last_stable_offset(slot.key, offsets.MAX_OFFSET)
                    admit = _admission(view, slot.key)
                try:
                    # Once a partition has data, later polls need room for a whole batch; only the
                    # first batch of the response may exceed the budgets (KIP-74).
                    polled = slot.reader.poll(budget, upto, admit)
                except Exception as exc:  # a failed reader is dropped, the client retries
                    slot.error = kafka_error_of(exc).code
                    slot.log.release(slot.reader, failed=True)
                    slot.reader = None
                    continue
                slot.records += polled.records
                slot.chunks += polled.chunks
                slot.size += polled.size
                total += polled.size
                slot.stalled = committed and not polled.size and slot.reader.reader.queued > 0
                unexplained |= polled.stopped_at >= 0
            remaining = deadline - time.monotonic()
            if total == 0 and remaining <= 0 and _data_known(backend, slots):
                # Records exist past the fetch offset but a freshly opened reader has not received
                # them yet: a Kafka broker would return them at once, so wait for them a little.
                remaining = started + KNOWN_DATA_GRACE_S - time.monotonic()
            if total >= max(request.min_bytes, 1) and total < max_bytes and not any(s.error for s in slots):
                # Enough to answer, but other partitions hold records their freshly opened readers
                # have not received yet: Kafka's broker would return those too, in this answer, so
                # give them a moment (clients such as kafka-python take one answer as all there is).
                lagging = [s.reader.arrival() for s in slots if _lagging(s)]
                grace = started + FRESH_READER_GRACE_S - time.monotonic()
                if lagging and grace > 0:
                    await asyncio.wait(lagging, timeout=grace, return_when=asyncio.ALL_COMPLETED)
                    continue
            if total >= max(request.min_bytes, 1) or remaining <= 0 or any(s.error for s in slots):
                break
            if unexplained:  # a transactional batch the view does not know yet: catch up, poll again
                await view.synced()
                continue
            waiting = [s.reader.arrival() for s in slots if s.reader is not None and not s.stalled]
            if committed and any(s.stalled for s in slots):
                waiting.append(view.changed())  # the last stable offset moves when a transaction ends
            if not waiting:
                break
            if waited_since is None:
                waited_since = time.monotonic()
            await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for slot in slots:
            if slot.reader is not None:
                slot.log.release(slot.reader)
    if waited_since is not None:
        metrics.fetch_waited(time.monotonic() - waited_since)
    for slot in slots:
        if slot.size:
            metrics.fetched(slot.topic, slot.size, slot.records)
    return _response(backend, request, slots, view, committed)


def _admission(view, key):
    """read_committed: a transactional entry goes out if the view accounts for it, or arrived before
    the view last caught up with ``__transactions`` (then its transaction is a committed one)."""
    def admit(producer_id: int, base_offset: int, received_at: float) -> bool:
        return view.explains(key, producer_id, base_offset) or received_at < view.synced_at
    return admit


def _lagging(slot: _Slot) -> bool:
    """A partition whose reader is fresh (it has not passed a single entry yet) and returned nothing,
    although records exist past its fetch offset. Only fresh readers: a reader already streaming is
    always a moment behind the latest write, and waiting for it would hold every answer back."""
    return (slot.reader is not None and slot.reader.high_offset < 0 and not slot.size and not slot.stalled
            and not slot.reader.reader.queued and slot.log.high_watermark > slot.reader.next_offset)


def _data_known(backend, slots: list[_Slot]) -> bool:
    return any(s.reader is not None and s.log.high_watermark > s.reader.next_offset for s in slots)


async def _open(backend, slot: _Slot) -> None:
    try:
        check_kafka_name(slot.topic)
        count = await backend.partition_count(slot.topic)
        if slot.partition >= count:  # grown by another gateway or worker since it was cached?
            count = await backend.partition_count(slot.topic, max_age_s=0.5)
        if not 0 <= slot.partition < count:
            slot.error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            return
        if not cached_log_start(backend, slot.topic, slot.partition) <= slot.offset <= offsets.MAX_OFFSET:
            slot.error = ErrorCode.OFFSET_OUT_OF_RANGE  # below the log start DeleteRecords set, too
            return
        slot.log = backend.partition_log(slot.topic, slot.partition)
        if slot.log.high_watermark < 0:
            await backend.latest_offset(slot.topic, slot.partition)
        if backend.contiguous and not await slot.log.in_range(slot.offset):
            slot.error = ErrorCode.OFFSET_OUT_OF_RANGE  # past the end or before the start, as Kafka answers
            return
        slot.reader = await slot.log.reader_at(slot.offset)
    except InvalidTopicName:
        slot.error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    except KafkaError as exc:
        slot.error = exc.code
    except Exception as exc:
        slot.error = kafka_error_of(exc).code
        log.warning("opening a reader on %s-%d failed: %r", slot.topic, slot.partition, exc)


def _response(backend, request, slots: list[_Slot], view, committed: bool) -> FetchResponseData:
    by_topic: dict[str, list] = {}
    for slot in slots:
        hw = max(slot.log.high_watermark, 0) if not slot.error and slot.log is not None else -1
        lso = hw if view is None or hw < 0 else view.last_stable_offset(slot.key, hw)
        aborted = []
        if committed and slot.size and slot.reader is not None:
            aborted = view.aborted_between(slot.key, slot.offset, slot.reader.next_offset)
        by_topic.setdefault(slot.topic, []).append(PartitionData(
            partition_index=slot.partition, error_code=slot.error, high_watermark=hw, last_stable_offset=lso,
            records=slot.chunks, aborted_transactions=aborted))
    return FetchResponseData(throttle_time_ms=0, error_code=0, session_id=0,
                             responses=[FetchableTopicResponse(t, ps) for t, ps in by_topic.items()])


def error_response(request, code) -> FetchResponseData:
    return FetchResponseData(throttle_time_ms=0, error_code=code, session_id=0, responses=[
        FetchableTopicResponse(t.topic, [PartitionData(partition_index=p.partition, error_code=code,
                                                       high_watermark=-1, last_stable_offset=-1)
                                         for p in t.partitions]) for t in request.topics])
