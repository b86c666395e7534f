"""Produce (key 0), versions 3-12 served; advertised from version 0.

Each partition's single record batch (magic 2) is checked (size, CRC32C, record count) here and
handed to the partition's log (backend/partition_log.py), which writes it as one Pulsar entry in
arrival order; its base offset is its first record's offset (backend/entry_index.py in contiguous
mode, the packed Pulsar position in packed mode). When the
partition count is cached, nothing here awaits before the write: a request's batches are on their
way to Pulsar within the step that decoded it. The request is decoded by protocol/produce_request.py, which leaves the batches as
views of the received frame. acks=1 and acks=all both answer once Pulsar has persisted the entry (Pulsar has no
"leader only" write); acks=0 gets no answer, as in Kafka.

Idempotent producers (producer_id >= 0): duplicates of one of the last five batches are answered
with the original base offset and written once; out-of-order sequences get
OUT_OF_ORDER_SEQUENCE_NUMBER and stale epochs INVALID_PRODUCER_EPOCH (backend/idempotence.py).
That holds across a gateway restart or a move to another gateway: each idempotent batch is stored
with its identity, and before a partition's first idempotent write a gateway reads the identities
of its last entries back (backend/producer_recovery.py).

Transactional batches (kop/txn): the batch's producer must have the partition in its open
transaction, as this gateway's view of ``__transactions`` shows it (the view waits for
``__transactions`` once before refusing): else INVALID_TXN_STATE (partition not added) or
INVALID_PRODUCER_EPOCH (a fenced producer). A batch that passes is written like any other; read_committed
consumers see it once its transaction commits.

Deviations from Kafka:
- Advertised from version 0 because librdkafka < 2.11.1 disables compression when Produce's
  minimum version is above 0 (Kafka 4.0 does the same, KAFKA-18659); a request of version 0-2
  (message format v0/v1) closes the connection with a log line.
- At most 16,384 records per batch (RECORD_LIST_TOO_LARGE beyond): the batch index field of the
  packed offset layout (mapping/offsets.py), kept in both modes so a gateway can switch modes.
- ``log_append_time_ms`` is -1 (CreateTime); ``log_start_offset`` is -1 (unknown).

A topic's configs are enforced on its records before they are written (backend/record_rules.py):
keys on compacted topics (INVALID_RECORD with per-record errors, KIP-467), max.message.bytes,
timestamp bounds (INVALID_TIMESTAMP).
"""

from __future__ import annotations

import asyncio
import logging

from ..backend.api import Batch, check_records
from ..mapping import offsets
from ..mapping.topics import InvalidTopicName, check_kafka_name
from ..protocol import records as kafka_records
from ..protocol.errors import ErrorCode, KafkaError
from ..protocol.produce_response import PartitionProduceResponse, ProduceResponseData, TopicProduceResponse
from .registry import handler

API_KEY = 0
log = logging.getLogger(__name__)

# A partition beyond the cached count is looked up again when the count is older than this.
PARTITION_RECHECK_S = 0.5
# Pulsar's default maxMessageSize (5 MiB) less room for the entry's own metadata.
MAX_ENTRY_BYTES = 5 * 1024 * 1024 - 64 * 1024


@handler(API_KEY, 3, 12, advertised_min=0, immediate=True)
def serve(ctx, request):
    """Immediate (registry.py): returns the response, or a future of it. Each partition's outcome
    arrives through a callback (in the step that reads its Pulsar receipt, partition_log.py); the
    answer is complete when the last one has."""
    view = ctx.txn_view
    if request.transactional_id is not None and view is None:
        code, message = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "transactions are not served here"
        return _uniform_error(request, code, message)
    if request.acks not in (-1, 0, 1):
        return _uniform_error(request, ErrorCode.INVALID_REQUIRED_ACKS, f"acks={request.acks}")
    answer = _Answer(request)
    backend = ctx.backend
    later = []  # partitions of topics whose partition count must be looked up first
    unverified = []  # transactional batches the view must confirm first
    # Places in each partition's write order are taken now, before any await.
    for topic in request.topic_data:
        name = topic.name
        try:
            check_kafka_name(name)
        except InvalidTopicName:
            for part in topic.partition_data:
                code = ErrorCode.INVALID_TOPIC_EXCEPTION if part.index >= 0 else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                answer.outcome(answer.slot(), (code, -1, ""))
            continue
        count = backend.cached_partition_count(name)
        for part in topic.partition_data:
            index = answer.slot()
            if part.index < 0:
                answer.outcome(index, (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, f"{name}-{part.index} does not exist"))
            elif count is not None and part.index < count:
                try:
                    batch = _batch(backend, part, name)
                except KafkaError as exc:
                    answer.outcome(index, _refused(exc))
                    continue
                if batch.header.is_transactional:
                    if request.transactional_id is None:
                        answer.outcome(index, (ErrorCode.INVALID_RECORD, -1, "a transactional batch without a "
                                                                             "transactional id"))
                        continue
                    key = (backend.namespace.path, name, part.index)
                    tid = ctx.group_key(request.transactional_id)
                    if not view.in_transaction(tid, batch.header.producer_id, batch.header.producer_epoch, key):
                        partition_log = backend.partition_log(name, part.index)
                        unverified.append((partition_log, partition_log.reserve(answer.callback(index)), batch,
                                           tid, key))
                        continue
                backend.partition_log(name, part.index).submit(batch, answer.callback(index))
            else:
                partition_log = backend.partition_log(name, part.index)
                later.append((name, part, partition_log, partition_log.reserve(answer.callback(index))))
    if later or unverified:
        return _check_later(backend, later, answer, view, unverified)
    return answer.result()


class _Answer:
    """The outcomes of one request's partitions, in request order, and the response once all are in."""
    __slots__ = ("request", "outcomes", "missing", "future")

    def __init__(self, request) -> None:
        self.request = request
        self.outcomes: list = []
        self.missing = 0
        self.future: asyncio.Future | None = None

    def slot(self) -> int:
        self.outcomes.append(None)
        self.missing += 1
        return len(self.outcomes) - 1

    def callback(self, index: int):
        return lambda outcome: self.outcome(index, outcome)

    def outcome(self, index: int, outcome: tuple) -> None:
        if self.outcomes[index] is None:
            self.outcomes[index] = outcome
            self.missing -= 1
            if self.missing == 0 and self.future is not None and not self.future.done():
                self.future.set_result(_response(self.request, self.outcomes))

    def result(self):
        """The response if every outcome is in, else a future of it."""
        if self.missing == 0:
            return _response(self.request, self.outcomes)
        if self.future is None:
            self.future = asyncio.get_running_loop().create_future()
        return self.future


async def _check_later(backend, later: list, answer: _Answer, view=None, unverified: list = ()):
    await asyncio.gather(*(_check_then_write(backend, *item) for item in later),
                         *(_verify_then_write(view, *item) for item in unverified))
    result = answer.result()
    return await result if isinstance(result, asyncio.Future) else result


def _response(request, outcomes: list) -> ProduceResponseData | None:
    if request.acks == 0:
        return None
    answers = iter(outcomes)
    topics = []
    for topic in request.topic_data:
        partitions = []
        for part in topic.partition_data:
            code, base_offset, message, *record_errors = next(answers)  # record errors: record_rules.py
            partitions.append(PartitionProduceResponse(part.index, code, base_offset, error_message=message or None,
                                                       record_errors=record_errors[0] if record_errors else []))
        topics.append(TopicProduceResponse(topic.name, partitions))
    return ProduceResponseData(topics)


async def _check_then_write(backend, name: str, part, partition_log, slot) -> None:
    try:
        # Beyond the cached count: maybe grown by another gateway or worker since; ask.
        count = await backend.partition_count(name, max_age_s=PARTITION_RECHECK_S)
        if part.index >= count:
            partition_log.cancel(slot, (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, f"{name}-{part.index} does not exist"))
            backend.discard_if_unused(partition_log)
            return
        batch = _batch(backend, part, name)
    except KafkaError as exc:
        partition_log.cancel(slot, _refused(exc))
        if exc.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            backend.discard_if_unused(partition_log)
        return
    partition_log.fill(slot, batch)


async def _verify_then_write(view, partition_log, slot, batch, tid: str, key) -> None:
    """A transactional batch whose transaction this gateway's view has not seen include its partition."""
    try:
        found = await view.open_transaction(tid, batch.header.producer_id, batch.header.producer_epoch, key)
    except Exception as exc:  # noqa: BLE001 - __transactions unreachable: the client retries
        log.warning("verifying a transactional batch for %s-%d: %r", key[1], key[2], exc)
        found = ErrorCode.REQUEST_TIMED_OUT
    if isinstance(found, ErrorCode):
        partition_log.cancel(slot, (found, -1, "the partition is not in the producer's open transaction"
                                    if found == ErrorCode.INVALID_TXN_STATE else found.name))
    else:
        partition_log.fill(slot, batch)


def _refused(exc: KafkaError) -> tuple:
    """The outcome of a batch refused before writing; a 4th item lists its record errors (KIP-467)."""
    errors = getattr(exc, "record_errors", None)
    return (exc.code, -1, exc.message, errors) if errors else (exc.code, -1, exc.message)


def _batch(backend, part, topic: str) -> Batch:
    """The partition's one batch, checked and encoded (synchronous: no await between arrival and
    write)."""
    if not part.records:
        raise KafkaError(ErrorCode.INVALID_RECORD, "no record batch")
    try:
        batches = kafka_records.split_batches(part.records)
    except kafka_records.CorruptRecordError as exc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc
    except kafka_records.InvalidRecordError as exc:
        raise KafkaError(ErrorCode.INVALID_RECORD, str(exc)) from exc
    if len(batches) != 1:
        raise KafkaError(ErrorCode.INVALID_RECORD, f"{len(batches)} record batches; exactly one is allowed")
    header, view = batches[0]
    try:
        offsets.check_batch_size(header.records_count)
    except offsets.OffsetRangeError as exc:
        raise KafkaError(ErrorCode.RECORD_LIST_TOO_LARGE, str(exc)) from exc
    if header.size > MAX_ENTRY_BYTES:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE, f"batch of {header.size} bytes exceeds {MAX_ENTRY_BYTES}")
    # The batch's view of the received frame (framing.py, produce_request.py) is copied once, into
    # the entry.
    check_records(backend, topic, part.index, header, view)  # what the topic's configs demand
    return backend.prepare_batch(header, view)


def _uniform_error(request, code: ErrorCode, message: str) -> ProduceResponseData:
    return ProduceResponseData([TopicProduceResponse(t.name, [
        PartitionProduceResponse(p.index, code, -1, error_message=message) for p in t.partition_data])
        for t in request.topic_data])


def error_response(request, code):
    return _uniform_error(request, code, "unexpected server error")
