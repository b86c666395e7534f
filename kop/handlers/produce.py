"""Produce (key 0), versions 3-12 served; advertised from version 0.

Each partition's single record batch (magic 2) is checked (size, CRC32C, record count) and written
as one Pulsar entry (see backend/writer.py); its base offset is the packed Pulsar position of its
first record. The request is decoded by protocol/produce_request.py, which leaves the batches as
views of the received frame. acks=1 and acks=all both answer once Pulsar has persisted the entry (Pulsar has no
"leader only" write); acks=0 gets no answer, as in Kafka.

Idempotent producers (producer_id >= 0): duplicates of one of the last five batches are answered
with the original base offset and written once; out-of-order sequences get
OUT_OF_ORDER_SEQUENCE_NUMBER and stale epochs INVALID_PRODUCER_EPOCH (backend/idempotence.py).
That holds across a gateway restart or a move to another gateway: each idempotent batch is stored
with its identity, and before a partition's first idempotent write a gateway reads the identities
of its last entries back (backend/producer_recovery.py).

Deviations from Kafka:
- Advertised from version 0 because librdkafka < 2.11.1 disables compression when Produce's
  minimum version is above 0 (Kafka 4.0 does the same, KAFKA-18659); a request of version 0-2
  (message format v0/v1) closes the connection with a log line.
- Transactional batches and ``transactional_id`` get INVALID_RECORD / TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
  transactions are not served.
- At most 16,384 records per batch (RECORD_LIST_TOO_LARGE beyond): the batch index field of the
  offset layout (mapping/offsets.py).
- ``log_append_time_ms`` is -1 (CreateTime); ``log_start_offset`` is -1 (unknown).
"""

from __future__ import annotations

import asyncio
import logging

from .. import metrics
from ..backend import writer as writer_mod
from ..backend.errors import kafka_error_of
from ..backend.idempotence import Verdict, last_sequence
from ..backend.resends import producer_tag
from ..mapping import offsets
from ..mapping.topics import InvalidTopicName, check_kafka_name
from ..protocol import records as kafka_records
from ..protocol.errors import ErrorCode, KafkaError
from ..protocol.produce_response import PartitionProduceResponse, ProduceResponseData, TopicProduceResponse
from .registry import handler

API_KEY = 0
log = logging.getLogger(__name__)

# Pulsar's default maxMessageSize (5 MiB) less room for the entry's own metadata.
MAX_ENTRY_BYTES = 5 * 1024 * 1024 - 64 * 1024


@handler(API_KEY, 3, 12, advertised_min=0)
async def serve(ctx, request):
    if request.transactional_id is not None:
        code, message = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "transactions are not supported"
        return _uniform_error(request, code, message)
    if request.acks not in (-1, 0, 1):
        return _uniform_error(request, ErrorCode.INVALID_REQUIRED_ACKS, f"acks={request.acks}")
    backend = ctx.backend
    jobs = []
    # Places in each partition's write order are taken now, before any await (see OrderGate).
    for topic in request.topic_data:
        for part in topic.partition_data:
            slot = None
            try:
                check_kafka_name(topic.name)
                if part.index >= 0:
                    url, state = backend.partition_state(topic.name, part.index)
                    slot = (url, state, state.gate.take())
            except InvalidTopicName:
                pass
            jobs.append((topic.name, part, slot))
    if len(jobs) == 1:  # the common small request: no task of its own
        results = [await _produce_one(ctx, *jobs[0])]
    else:
        results = await asyncio.gather(*(_produce_one(ctx, name, part, slot) for name, part, slot in jobs))
    if request.acks == 0:
        return None
    by_topic: dict[str, list] = {}
    for (name, part, _), (error, base_offset, message) in zip(jobs, results):
        by_topic.setdefault(name, []).append(
            PartitionProduceResponse(part.index, error, base_offset, error_message=message or None))
    return ProduceResponseData([TopicProduceResponse(n, ps) for n, ps in by_topic.items()])


async def _produce_one(ctx, topic: str, part, slot) -> tuple[int, int, str]:
    """(error code, base offset, error message) for one partition."""
    if slot is None:
        return ErrorCode.INVALID_TOPIC_EXCEPTION if part.index >= 0 else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, ""
    url, state, ticket = slot
    backend = ctx.backend
    try:
        try:
            header, batch, recs = await _validate(ctx, topic, part)
            writer = await backend.writer(url, state)
            if header.producer_id >= 0 and not state.producers_recovered:
                await backend.recover_producers(topic, part.index, state)  # a restart forgot them
        except KafkaError as exc:
            if exc.code in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.INVALID_TOPIC_EXCEPTION):
                state.gate.release(ticket)
                ticket = None
                backend.discard_unused_state(url)
            return exc.code, -1, exc.message
        await state.gate.turn(ticket)
        producer_id = header.producer_id
        first_seq = header.base_sequence
        last_seq = last_sequence(first_seq, header.records_count)
        if producer_id >= 0:
            verdict, original = state.producers.check(producer_id, header.producer_epoch, first_seq, last_seq)
            if verdict is Verdict.DUPLICATE:
                state.gate.release(ticket)
                ticket = None
                try:
                    base = await original if isinstance(original, asyncio.Future) else original
                except Exception as exc:  # the original failed: its error is the answer
                    return kafka_error_of(exc).code, -1, ""
                return ErrorCode.NONE, base, ""
            if verdict is Verdict.FENCED:
                return ErrorCode.INVALID_PRODUCER_EPOCH, -1, "stale producer epoch"
            if verdict is Verdict.OUT_OF_ORDER:
                return ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1, f"unexpected sequence {first_seq}"

        def enqueued(future: asyncio.Future) -> None:
            nonlocal ticket
            if producer_id >= 0:
                base_future = asyncio.ensure_future(_base_of(future))
                state.producers.register(producer_id, header.producer_epoch, first_seq, last_seq, base_future)
            state.gate.release(ticket)
            ticket = None

        try:
            tag = producer_tag(producer_id, header.producer_epoch, first_seq, last_seq) if producer_id >= 0 else None
            appended = await writer.append(records=recs, batch=batch, records_count=header.records_count,
                                           max_timestamp=header.max_timestamp, size=header.size,
                                           on_enqueued=enqueued, producer=tag)
        except Exception as exc:
            if producer_id >= 0:
                state.producers.forget(producer_id, first_seq)
            error = kafka_error_of(exc)
            log.warning("produce to %s failed: %s", url, error)
            return error.code, -1, error.message
        if producer_id >= 0:
            state.producers.settle(producer_id, first_seq, appended.base_offset)
        backend.note_written(state, appended.base_offset + appended.records)
        metrics.produced(topic, header.size, header.records_count, backend.entry_format)
        return ErrorCode.NONE, appended.base_offset, ""
    finally:
        if ticket is not None:
            state.gate.release(ticket)


async def _base_of(future: asyncio.Future) -> int:
    return (await future).base_offset


async def _validate(ctx, topic: str, part):
    count = await ctx.backend.partition_count(topic)
    if part.index >= count:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{part.index} does not exist")
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
    if header.is_transactional:
        raise KafkaError(ErrorCode.INVALID_RECORD, "transactional batches are not supported")
    try:
        offsets.check_batch_size(header.records_count)
    except offsets.OffsetRangeError as exc:
        raise KafkaError(ErrorCode.RECORD_LIST_TOO_LARGE, str(exc)) from exc
    if header.size > MAX_ENTRY_BYTES:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE, f"batch of {header.size} bytes exceeds {MAX_ENTRY_BYTES}")
    if ctx.backend.entry_format == "kafka":
        # The batch's only copy in kop: the frame and this view came from the socket's bytes as they
        # were (framing.py, produce_request.py); the Pulsar binding takes bytes.
        return header, bytes(view), None
    try:
        recs = kafka_records.decode_records(view)
    except kafka_records.BatchTooLargeError as exc:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE, str(exc)) from exc
    except kafka_records.CorruptRecordError as exc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc
    except kafka_records.InvalidRecordError as exc:
        raise KafkaError(ErrorCode.INVALID_RECORD, str(exc)) from exc
    decoded = sum(len(r.value or b"") + len(r.key or b"") + 64 for r in recs)
    if decoded > writer_mod.BATCH_BYTES_LIMIT - 64 * 1024:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE, f"batch decompresses to {decoded} bytes")
    return header, None, recs


def _uniform_error(request, code: ErrorCode, message: str) -> ProduceResponseData:
    return ProduceResponseData([TopicProduceResponse(t.name, [
        PartitionProduceResponse(p.index, code, -1, error_message=message) for p in t.partition_data])
        for t in request.topic_data])


def error_response(request, code):
    return _uniform_error(request, code, "unexpected server error")
