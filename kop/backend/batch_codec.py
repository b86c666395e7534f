"""Kafka record batches <-> Pulsar entries, a whole batch at a time (pure: no I/O, no asyncio).

Produce (:func:`entry_of`): a checked Kafka batch becomes what one Pulsar entry carries, its
MessageMetadata fields and payload. ``kafka`` format: the batch itself, marked ``__kafka_entry``.
``pulsar`` format: a Pulsar batch entry with one message per record (convert.py has the mapping),
compressed with the Pulsar codec matching the Kafka one the client used (gzip -> ZLIB, snappy,
lz4, zstd), so the data stays compressed in BookKeeper and on the way back out.

Fetch (:func:`kafka_batch_of`): a Pulsar batch entry (``pulsar`` format, or a native producer's)
becomes one Kafka batch whose offsets are the messages' packed positions, compressed again with the
Kafka codec matching the entry's, so a consumer receives compressed batches when the producer sent
them.

Two implementations of the per-record conversion: the compiled one (kop/_batch_codec.c, one call
per batch) covers the common records; the pure-Python one (protocol/records.py's record codec and
convert.py, record by record) covers everything and is the reference. The compiled one answers
None where it does not apply and the Python one takes over; where it applies, both give the same
bytes (tests/unit/test_batch_codec.py). ``use("python")`` turns the compiled one off.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from crc32c import crc32c

from ..protocol import inflate, records as kafka_records
from ..protocol.compression import compress as kafka_compress
from ..protocol.errors import ErrorCode, KafkaError
from ..protocol.records import BatchHeader, Record
from ..protocol.control import Marker, control_batch
from .convert import CONTROL, ENTRY, ENTRY_BATCH_V2, PRODUCER, RECORDS, TXN, pulsar_to_record, record_to_pulsar
from .idempotence import last_sequence
from .resends import producer_tag
from .wire import commands as cmd
from .wire.entries import Single, compress, encode_batch, key_values, properties_of, split
from .wire.proto import write_varint

try:
    from .. import _batch_codec as _native
except ImportError:  # not built (no C compiler at install time): the Python path does it all
    _native = None

log = logging.getLogger(__name__)

_implementation = "native" if _native is not None else "python"

# Largest payload a batch may decode to (Pulsar's maxMessageSize is 5 MiB; kop accepts less).
MAX_DECODED_BYTES = 8 * 1024 * 1024 - 64 * 1024
# Kafka codec (batch attributes) <-> Pulsar codec (MessageMetadata.compression).
PULSAR_CODEC = {inflate.GZIP: cmd.ZLIB, inflate.SNAPPY: cmd.SNAPPY, inflate.LZ4: cmd.LZ4, inflate.ZSTD: cmd.ZSTD}
KAFKA_CODEC = {pulsar: kafka for kafka, pulsar in PULSAR_CODEC.items()}

_HEADER = struct.Struct(">qiibIhiqqqhii")
_ATTRIBUTES_POS = 21


def use(implementation: str) -> None:
    """"native" (the compiled codec, when it is built) or "python"."""
    global _implementation
    if implementation not in ("native", "python"):
        raise ValueError(f"unknown codec implementation {implementation!r}")
    _implementation = implementation if _native is not None else "python"


def implementation() -> str:
    return _implementation


@dataclass(slots=True)
class Entry:
    """What one Pulsar entry carries: encoded MessageMetadata fields (besides producer name,
    sequence id and publish time), the payload, and how many messages it holds."""

    metadata: bytes
    payload: bytes
    num_messages: int


# -- produce ------------------------------------------------------------------------------------

def entry_of(header: BatchHeader, batch, entry_format: str) -> Entry:
    """The entry for one checked Kafka batch (``batch``: its bytes, header included). Raises
    KafkaError (INVALID_RECORD, CORRUPT_MESSAGE, MESSAGE_TOO_LARGE) for records Kafka would refuse."""
    tag = None
    if header.producer_id >= 0:
        tag = producer_tag(header.producer_id, header.producer_epoch, header.base_sequence,
                           last_sequence(header.base_sequence, header.records_count))
    txn = f"{header.producer_id}:{header.producer_epoch}" if header.is_transactional else None
    if entry_format == "kafka":
        # The entry declares its records to Pulsar (CommandSend.num_messages): the broker's index,
        # hence the contiguous offsets, counts them (mapping/offset_index.py).
        return Entry(kafka_entry_metadata(header.records_count, header.max_timestamp, tag, txn), bytes(batch),
                     header.records_count)
    records = _records_section(header, batch)
    payload = None
    if _implementation == "native" and header.timestamp_type == 0 and txn is None:
        payload = _native.kafka_to_pulsar(records, header.records_count, header.base_timestamp, tag)
    if payload is None:  # the reference path, and every transactional batch (a property per record)
        payload = pulsar_payload_python(header, batch, tag, txn)
    if len(payload) > MAX_DECODED_BYTES:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE, f"batch decompresses to {len(payload)} bytes")
    fields: dict = {"num_messages_in_batch": header.records_count}
    if txn is not None:  # on the entry too, where kop's readers look (batch_of_entry, reader.py)
        fields["properties"] = key_values({TXN: txn})
    codec = PULSAR_CODEC.get(header.compression)
    if codec is not None:
        fields["compression"] = codec
        fields["uncompressed_size"] = len(payload)
        payload = compress(codec, payload)
    return Entry(cmd.MessageMetadata.encode(fields), payload, header.records_count)


def _records_section(header: BatchHeader, batch) -> bytes:
    """The batch's records, inflated (at most MAX_INFLATED_BYTES)."""
    data = memoryview(batch)[kafka_records.BATCH_HEADER_SIZE:]
    if header.compression == 0:
        return bytes(data)
    try:
        return inflate.inflate(header.compression, bytes(data), kafka_records.MAX_INFLATED_BYTES)
    except inflate.TooLarge as exc:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE, str(exc)) from exc
    except inflate.Undecodable as exc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"cannot decompress the records: {exc}") from exc


def pulsar_payload_python(header: BatchHeader, batch, tag: str | None, txn: str | None = None) -> bytes:
    """The reference conversion: decode every record (protocol/records.py), map each (convert.py)."""
    try:
        records = kafka_records.decode_records(batch)
    except kafka_records.BatchTooLargeError as exc:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE, str(exc)) from exc
    except kafka_records.CorruptRecordError as exc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc
    except kafka_records.InvalidRecordError as exc:
        raise KafkaError(ErrorCode.INVALID_RECORD, str(exc)) from exc
    return encode_records(records, tag, txn)


def encode_records(records: list[Record], tag: str | None = None, txn: str | None = None) -> bytes:
    """Records as the payload of a Pulsar batch entry (uncompressed)."""
    messages = []
    for i, record in enumerate(records):
        fields = record_to_pulsar(record)
        if i == 0 and tag is not None:  # the batch's identity, on its first message
            fields.properties[PRODUCER] = tag
        if txn is not None:
            fields.properties[TXN] = txn
        single: dict = {}
        if fields.properties:
            single["properties"] = key_values(fields.properties)
        if fields.partition_key is not None:
            single["partition_key"] = fields.partition_key
        if fields.event_timestamp:
            single["event_time"] = fields.event_timestamp
        if fields.null_value:
            single["null_value"] = True
        messages.append((single, fields.payload))
    return encode_batch(messages)


def _property(key: str, value: str) -> bytes:
    """MessageMetadata field 4 (properties), one KeyValue, encoded."""
    k, v = key.encode(), value.encode()
    inner = bytearray(b"\x0a")
    write_varint(inner, len(k))
    inner += k
    inner.append(0x12)
    write_varint(inner, len(v))
    inner += v
    out = bytearray(b"\x22")
    write_varint(out, len(inner))
    return bytes(out + inner)


_ENTRY_PROPERTY = _property(ENTRY, ENTRY_BATCH_V2)
_RECORDS_PROPERTIES = [_property(RECORDS, str(n)) for n in range(0, 1025)]


def kafka_entry_metadata(records_count: int, max_timestamp: int, producer: str | None = None,
                         txn: str | None = None, control: str | None = None) -> bytes:
    """The MessageMetadata fields of a kafka-format entry (``__kafka_entry``, ``__kafka_records``,
    ``__kafka_producer`` for an idempotent batch, event time), encoded by hand: one per batch written.
    The same bytes as ``MessageMetadata.encode`` gives (tests/unit/test_wire_codec.py)."""
    out = bytearray(_ENTRY_PROPERTY)
    out += _RECORDS_PROPERTIES[records_count] if records_count <= 1024 else _property(RECORDS, str(records_count))
    if producer is not None:
        out += _property(PRODUCER, producer)
    if txn is not None:
        out += _property(TXN, txn)
    if control is not None:
        out += _property(CONTROL, control)
    if max_timestamp > 0:
        out.append(0x60)  # field 12, event_time
        write_varint(out, max_timestamp)
    return bytes(out)


# -- fetch --------------------------------------------------------------------------------------

def kafka_batch_of(metadata: dict, payload: bytes, singles: list[Single] | None, base_offset: int,
                   skip: int = 0) -> bytes:
    """One Kafka batch of an entry's messages from index ``skip`` on; ``payload`` is the entry's
    payload inflated, ``singles`` its messages when already split (else split here when needed)."""
    batched = "num_messages_in_batch" in metadata
    batch = None
    producer = _transaction_of(metadata) if "properties" in metadata else None
    if _implementation == "native" and batched:
        converted = _native.pulsar_to_kafka(payload, metadata["num_messages_in_batch"], skip,
                                            metadata.get("publish_time", 0))
        if converted is not None:
            records, first_ts, max_ts = converted
            count = metadata["num_messages_in_batch"] - skip
            batch = batch_from_records(records, base_offset + skip, count, first_ts, max_ts, producer=producer)
    if batch is None:
        if singles is None:
            singles = split({k: v for k, v in metadata.items() if k != "compression"}, payload)
        batch = kafka_batch_python(metadata, singles, base_offset, skip, producer)
    codec = KAFKA_CODEC.get(metadata.get("compression", cmd.NONE))
    return compress_batch(batch, codec) if codec is not None else batch


def _transaction_of(metadata: dict) -> tuple[int, int] | None:
    """(producer id, epoch) of a transactional entry (its ``__kafka_txn``), else None."""
    value = properties_of(metadata).get(TXN)
    if value is None:
        return None
    try:
        pid, epoch = (int(x) for x in value.split(":"))
    except ValueError:
        return None
    return pid, epoch


def kafka_batch_python(metadata: dict, singles: list[Single], base_offset: int, skip: int = 0,
                       producer: tuple[int, int] | None = None) -> bytes:
    """The reference conversion, message by message (convert.py)."""
    publish_time = metadata.get("publish_time", 0)
    records = []
    for index in range(skip, len(singles)):
        fields = singles[index].metadata
        key = fields.get("partition_key", "")
        properties = properties_of(fields)
        if key and fields.get("partition_key_b64_encoded"):
            properties.setdefault("__kafka_key_b64", "1")  # Pulsar's own flag for a binary key
        records.append(pulsar_to_record(index - skip, singles[index].payload, fields.get("null_value", False),
                                        key, fields.get("event_time", 0), publish_time, properties))
    section, first_ts, max_ts = encode_kafka_records(records)
    return batch_from_records(section, base_offset + skip, len(records), first_ts, max_ts, producer=producer)


def encode_kafka_records(records: list[Record]) -> tuple[bytes, int, int]:
    """(records section, first timestamp, max timestamp) of a v2 batch: offset deltas as given,
    timestamps relative to the first record's. records.build_batch would do, but it takes a first
    timestamp of -1 for "none yet" and cannot encode an untimed record ahead of timed ones, which a
    Pulsar entry may hold (a Kafka record stored with ``__kafka_ts=-1``)."""
    first_ts = records[0].timestamp
    max_ts = max(r.timestamp for r in records)
    out = bytearray()
    for r in records:
        body = bytearray(b"\x00")  # attributes
        _zigzag(body, r.timestamp - first_ts)
        _zigzag(body, r.offset_delta)
        _length_prefixed(body, r.key)
        _length_prefixed(body, r.value)
        _zigzag(body, len(r.headers))
        for name, value in r.headers:
            _length_prefixed(body, name.encode())
            _length_prefixed(body, value)
        _zigzag(out, len(body))
        out += body
    return bytes(out), first_ts, max_ts


def _zigzag(out: bytearray, value: int) -> None:
    write_varint(out, (value << 1) ^ (value >> 63))


def _length_prefixed(out: bytearray, data: bytes | None) -> None:
    if data is None:
        _zigzag(out, -1)
    else:
        _zigzag(out, len(data))
        out += data


def batch_from_records(records: bytes, base_offset: int, count: int, first_ts: int, max_ts: int,
                       attributes: int = 0, producer: tuple[int, int] | None = None) -> bytes:
    """A v2 batch around an encoded records section (leader epoch -1). With ``producer`` (id,
    epoch) it is a transactional batch of that producer, else it has none."""
    pid, epoch = producer if producer is not None else (-1, -1)
    if producer is not None:
        attributes |= 0x10  # isTransactional
    head = bytearray(_HEADER.pack(base_offset, kafka_records.BATCH_HEADER_SIZE - 12 + len(records), -1, 2, 0,
                                  attributes, count - 1, first_ts, max_ts, pid, epoch, -1, count))
    checksum = crc32c(records, value=crc32c(memoryview(head)[_ATTRIBUTES_POS:]))
    struct.pack_into(">I", head, 17, checksum)
    return bytes(head) + records


def compress_batch(batch: bytes, codec: int) -> bytes:
    """``batch`` (uncompressed) with its records compressed by Kafka codec ``codec``."""
    header = kafka_records.parse_header(batch)
    records = kafka_compress(codec, memoryview(batch)[kafka_records.BATCH_HEADER_SIZE:])
    return batch_from_records_header(header, records, codec)


def batch_from_records_header(header: BatchHeader, records: bytes, codec: int) -> bytes:
    head = bytearray(_HEADER.pack(header.base_offset, kafka_records.BATCH_HEADER_SIZE - 12 + len(records),
                                  header.partition_leader_epoch, 2, 0, (header.attributes & ~0x07) | codec,
                                  header.last_offset_delta, header.base_timestamp, header.max_timestamp,
                                  header.producer_id, header.producer_epoch, header.base_sequence,
                                  header.records_count))
    checksum = crc32c(records, value=crc32c(memoryview(head)[_ATTRIBUTES_POS:]))
    struct.pack_into(">I", head, 17, checksum)
    return bytes(head) + records


# -- transaction markers --------------------------------------------------------------------------

def marker_entry(marker: Marker, timestamp_ms: int) -> tuple[BatchHeader, Entry]:
    """A transaction marker as kop stores it in either format: a ``kafka``-format entry holding the
    control batch (protocol/control.py), marked for native Pulsar consumers (convert.py)."""
    batch = control_batch(marker, 0, timestamp_ms)
    metadata = kafka_entry_metadata(1, timestamp_ms, None, f"{marker.producer_id}:{marker.producer_epoch}",
                                    "commit" if marker.commit else "abort")
    return kafka_records.parse_header(batch), Entry(metadata, batch, 1)
