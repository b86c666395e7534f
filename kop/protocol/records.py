"""Kafka v2 record batches ("magic 2"): split, validate, decode and build them.

Sans-IO: bytes in, objects out. A Produce request's ``records`` field holds
one or more concatenated batches, each starting with this 61-byte header
(big-endian, Kafka's field names)::

    offset size field
         0    8 baseOffset            assigned by the broker; 0 from producers
         8    4 batchLength           bytes after this field: batch = batchLength + 12
        12    4 partitionLeaderEpoch
        16    1 magic                 2 for this format
        17    4 crc                   CRC-32C of bytes 21 .. end of batch
        21    2 attributes            compression (bits 0-2), timestampType (3),
                                      isTransactional (4), isControl (5)
        23    4 lastOffsetDelta
        27    8 baseTimestamp
        35    8 maxTimestamp
        43    8 producerId
        51    2 producerEpoch
        53    4 baseSequence
        57    4 recordsCount
        61    . records               compressed as one blob when compression != 0

The CRC starts at ``attributes`` (byte 21), so ``baseOffset``, ``batchLength``,
``partitionLeaderEpoch`` and ``magic`` lie outside it. That is deliberate in
Kafka: the broker assigns offsets (and the leader epoch) to a batch by
overwriting bytes 0..8 in place, without re-checksumming or re-encoding the
records. The gateway does the same (``rewrite_base_offset``).

Records are decoded and encoded here, in Python (each record: a length, attributes,
timestamp and offset deltas, key, value and headers, as zigzag varints and
length-prefixed bytes). The common Produce path never decodes records in Python:
the compiled codec (kop/_batch_codec.c) converts whole batches, and this codec is
its reference and its fallback. It does not use aiokafka's Cython one, whose
package pulls asyncio in: this package is sans-IO. Every codec failure becomes
one of two errors the gateway maps to a Kafka error code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import crc32c
from . import inflate
from .compression import compress

BATCH_HEADER_SIZE = 61
_HEADER = struct.Struct(">qiibIhiqqqhii")
_INT64, _INT32, _UINT32 = (struct.Struct(f) for f in (">q", ">i", ">I"))
_LENGTH_POS, _MAGIC_POS, _CRC_POS, _ATTRIBUTES_POS = 8, 16, 17, 21  # the CRC covers 21..end
_LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes batchLength does not count

MAGIC = 2
COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4, COMPRESSION_ZSTD = range(5)
NO_TIMESTAMP = -1


class CorruptRecordError(ValueError):
    """The bytes are damaged (CRC, length, truncation, undecodable payload): CORRUPT_MESSAGE."""


class InvalidRecordError(ValueError):
    """The batch is well formed but not acceptable (magic, control, counts, header keys): INVALID_RECORD."""


class BatchTooLargeError(ValueError):
    """The records inflate past MAX_INFLATED_BYTES: MESSAGE_TOO_LARGE (a decompression bomb, or
    more than one Pulsar entry could hold anyway)."""


# What a compressed batch may inflate to when its records are decoded (the ``pulsar`` entry format).
# Its records must fit one Pulsar entry (5 MiB by default) in any case.
MAX_INFLATED_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The 61-byte v2 batch header, fields in wire order."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def compression(self) -> int:
        """0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd."""
        return self.attributes & 0x07

    @property
    def timestamp_type(self) -> int:
        """0 CreateTime, 1 LogAppendTime (then every record's timestamp is ``max_timestamp``)."""
        return (self.attributes >> 3) & 1

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & 0x10)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & 0x20)

    @property
    def size(self) -> int:
        """Whole batch size in bytes, header included."""
        return self.batch_length + _LOG_OVERHEAD


@dataclass(slots=True)
class Record:
    """One decoded record; ``timestamp`` is absolute epoch ms (-1 for none)."""

    offset_delta: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def parse_header(buf, pos: int = 0) -> BatchHeader:
    """Unpack the header at ``pos``; the caller guarantees 61 bytes are there."""
    return BatchHeader(*_HEADER.unpack_from(buf, pos))


def split_batches(records, *, allow_control: bool = False) -> list[tuple[BatchHeader, memoryview]]:
    """Validate and split concatenated batches, returning zero-copy views of each.

    Checks mirror what Kafka's broker does before appending a Produce request.
    Control batches (transaction markers) are written only by brokers, so a
    client sending one is refused unless ``allow_control`` (e.g. reading back
    batches the gateway stored itself).
    """
    view = memoryview(records).cast("B")
    batches = []
    pos = 0
    while pos < len(view):
        header, batch = _next_batch(view, pos, allow_control)
        batches.append((header, batch))
        pos += header.size
    return batches


def _next_batch(view: memoryview, pos: int, allow_control: bool) -> tuple[BatchHeader, memoryview]:
    """Check one batch at ``pos``, in Kafka's order: length, magic (it decides the layout), CRC, counts.

    Magic is read before the v2 size check so that a v0/v1 message set is
    reported as the wrong format (INVALID_RECORD) rather than as damage.
    """
    remaining = len(view) - pos
    if remaining <= _MAGIC_POS:
        raise CorruptRecordError(f"{remaining} trailing bytes at position {pos}: a truncated batch header")
    (batch_length,) = _INT32.unpack_from(view, pos + _LENGTH_POS)
    if batch_length <= _MAGIC_POS - _LOG_OVERHEAD or batch_length + _LOG_OVERHEAD > remaining:
        raise CorruptRecordError(f"batchLength {batch_length} at {pos} overruns the {remaining} bytes left")
    if (magic := view[pos + _MAGIC_POS]) != MAGIC:
        raise InvalidRecordError(f"unsupported magic {magic} at {pos}: only v2 record batches are accepted")
    if batch_length + _LOG_OVERHEAD < BATCH_HEADER_SIZE:
        raise CorruptRecordError(f"batchLength {batch_length} at {pos} is shorter than a v2 header")
    header = parse_header(view, pos)
    batch = view[pos : pos + header.size]
    _check_crc(header, batch)
    _check_header(header, allow_control)
    return header, batch


def _check_crc(header: BatchHeader, batch: memoryview) -> None:
    actual = crc32c.crc32c(batch[_ATTRIBUTES_POS:])
    if actual != header.crc:
        raise CorruptRecordError(f"batch CRC mismatch: expected {header.crc:#010x}, computed {actual:#010x}")


def _check_header(header: BatchHeader, allow_control: bool) -> None:
    """Refuse what a CRC cannot catch: a client's own encoding mistakes."""
    if header.compression > COMPRESSION_ZSTD:
        raise CorruptRecordError(f"unknown compression codec {header.compression} in attributes")
    if header.is_control and not allow_control:
        raise InvalidRecordError("control batches are written by the broker, not by clients")
    if header.records_count < 1 and not header.is_control:
        raise InvalidRecordError(f"recordsCount {header.records_count}: a batch holds at least one record")
    if header.records_count >= 1 and header.last_offset_delta != header.records_count - 1:
        raise InvalidRecordError(f"lastOffsetDelta {header.last_offset_delta} != recordsCount - 1")


def with_base_offset(batch, base_offset: int) -> bytearray:
    """Copy of ``batch`` carrying ``base_offset``; the CRC stays valid (the first 8 bytes are outside it)."""
    copy = bytearray(batch)
    rewrite_base_offset(copy, base_offset)
    return copy


def rewrite_base_offset(buf: bytearray | memoryview, base_offset: int, pos: int = 0) -> None:
    """Assign offsets to the batch at ``pos`` in place, as Kafka's broker does."""
    _INT64.pack_into(buf, pos, base_offset)


def decode_records(batch) -> list[Record]:
    """Decode every record of exactly one batch (any compression).

    The CRC is not re-checked here: ``split_batches`` already did it on the
    way in. Damage becomes CorruptRecordError; non-UTF-8 header keys (well-formed
    bytes Kafka cannot represent) and a recordsCount other than the records
    found become InvalidRecordError.
    """
    data = bytes(batch)
    header = _header_of_single_batch(data)
    pos = BATCH_HEADER_SIZE
    if header.compression != COMPRESSION_NONE:
        data, pos = _inflated(data, header), 0
    try:
        records = _decode(data, pos, header)
    except (InvalidRecordError, CorruptRecordError):
        raise
    except UnicodeDecodeError as exc:
        raise InvalidRecordError(f"record header key is not valid UTF-8: {exc}") from exc
    except IndexError as exc:  # a varint ran past the end
        raise CorruptRecordError(f"cannot decode records: truncated at a varint ({exc})") from exc
    if header.timestamp_type == 1:  # LogAppendTime: the broker's time, for every record
        for record in records:
            record.timestamp = header.max_timestamp
    return records


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint (or varlong) at ``pos``, and the position after it."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordError("a varint longer than 10 bytes")


def _decode(buf: bytes, pos: int, header: BatchHeader) -> list[Record]:
    """The records of ``buf`` from ``pos`` to its end. A one-byte varint (the common case) is read
    inline: this loop is the per-record cost of the Python path."""
    base_timestamp, end_of_records, out = header.base_timestamp, len(buf), []
    for _ in range(header.records_count):
        if pos >= end_of_records:
            raise InvalidRecordError(f"recordsCount {header.records_count} but {len(out)} records found")
        byte = buf[pos]
        if byte < 0x80:
            length, pos = (byte >> 1) ^ -(byte & 1), pos + 1
        else:
            length, pos = _varint(buf, pos)
        end = pos + length
        if length <= 0 or end > end_of_records:
            raise CorruptRecordError(f"record length {length} at {pos} runs past the records")
        pos += 1  # attributes: unused in v2
        byte = buf[pos]
        if byte < 0x80:
            timestamp_delta, pos = (byte >> 1) ^ -(byte & 1), pos + 1
        else:
            timestamp_delta, pos = _varint(buf, pos)
        byte = buf[pos]
        if byte < 0x80:
            offset_delta, pos = (byte >> 1) ^ -(byte & 1), pos + 1
        else:
            offset_delta, pos = _varint(buf, pos)
        key, pos = _bytes(buf, pos, end)
        value, pos = _bytes(buf, pos, end)
        if buf[pos] == 0:  # no headers
            headers, pos = [], pos + 1
        else:
            count, pos = _varint(buf, pos)
            if count < 0:
                raise CorruptRecordError(f"negative header count {count}")
            headers = []
            for _ in range(count):
                name, pos = _bytes(buf, pos, end)
                if name is None:
                    raise CorruptRecordError("a record header without a key")
                header_value, pos = _bytes(buf, pos, end)
                headers.append((name.decode("utf-8"), header_value))
        if pos != end:
            raise CorruptRecordError(f"record ends at {pos}, its length says {end}")
        out.append(Record(offset_delta, base_timestamp + timestamp_delta, key, value, headers))
    if pos != end_of_records:
        raise InvalidRecordError(f"recordsCount {header.records_count} but more records follow")
    return out


def _bytes(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    """Length-prefixed bytes (-1: null) inside the record ending at ``end``."""
    byte = buf[pos]
    if byte < 0x80:
        length, pos = (byte >> 1) ^ -(byte & 1), pos + 1
    else:
        length, pos = _varint(buf, pos)
    if length < 0:
        if length != -1:
            raise CorruptRecordError(f"negative length {length}")
        return None, pos
    if pos + length > end:
        raise CorruptRecordError(f"{length} bytes at {pos} run past the record")
    return buf[pos:pos + length], pos + length


def _inflated(data: bytes, header: BatchHeader) -> bytes:
    """The batch's records, inflated (at most MAX_INFLATED_BYTES)."""
    try:
        return inflate.inflate(header.compression, data[BATCH_HEADER_SIZE:], MAX_INFLATED_BYTES)
    except inflate.TooLarge as exc:
        raise BatchTooLargeError(str(exc)) from exc
    except inflate.Undecodable as exc:
        raise CorruptRecordError(f"cannot decompress the records: {exc}") from exc


def _header_of_single_batch(data: bytes) -> BatchHeader:
    """Check the framing before reading the records."""
    if len(data) < BATCH_HEADER_SIZE:
        raise CorruptRecordError(f"{len(data)} bytes is shorter than a batch header")
    header = parse_header(data)
    if header.magic != MAGIC:
        raise InvalidRecordError(f"unsupported magic {header.magic}")
    if header.size != len(data):
        raise CorruptRecordError(f"batchLength says {header.size} bytes but the batch has {len(data)}")
    return header


def build_batch(
    records: list[Record],
    *,
    base_offset: int = 0,
    compression: int = COMPRESSION_NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    timestamp_type: int = 0,
) -> bytearray:
    """Encode ``records`` as one v2 batch; offsets are base_offset + each offset_delta.

    Gaps between offset deltas are kept (as after compaction); lastOffsetDelta
    is then the last record's delta, so such a batch is fine in a Fetch answer
    but would be refused by ``split_batches``. With ``timestamp_type=1``
    (LogAppendTime) readers report ``max_timestamp`` for every record.
    """
    _check_buildable(records, compression, timestamp_type)
    first = records[0].timestamp
    section = bytearray()
    for r in records:
        body = bytearray(b"\x00")  # attributes
        _put_varint(body, r.timestamp - first)
        _put_varint(body, r.offset_delta)
        _put_bytes(body, r.key)
        _put_bytes(body, r.value)
        _put_varint(body, len(r.headers))
        for name, value in r.headers:
            _put_bytes(body, name.encode("utf-8"))
            _put_bytes(body, value)
        _put_varint(section, len(body))
        section += body
    if compression != COMPRESSION_NONE:
        section = compress(compression, section)
    attributes = compression | (timestamp_type << 3) | (0x10 if is_transactional else 0)
    buf = bytearray(_HEADER.pack(base_offset, BATCH_HEADER_SIZE - _LOG_OVERHEAD + len(section), -1, MAGIC, 0,
                                 attributes, records[-1].offset_delta, first, max(r.timestamp for r in records),
                                 producer_id, producer_epoch, base_sequence, len(records)))
    buf += section
    _UINT32.pack_into(buf, _CRC_POS, crc32c.crc32c(memoryview(buf)[_ATTRIBUTES_POS:]))
    return buf


def _put_varint(out: bytearray, value: int) -> None:
    """A zigzag varint (or varlong)."""
    value = (value << 1) ^ (value >> 63)
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_bytes(out: bytearray, data) -> None:
    if data is None:
        out.append(1)  # zigzag(-1)
    else:
        _put_varint(out, len(data))
        out += data


def empty_batch(base_offset: int, last_offset_delta: int, *, producer_id: int = -1, producer_epoch: int = -1,
                base_sequence: int = -1, base_timestamp: int = NO_TIMESTAMP, max_timestamp: int = NO_TIMESTAMP,
                attributes: int = 0, partition_leader_epoch: int = -1) -> bytes:
    """A v2 batch with no records that still spans base_offset .. base_offset + last_offset_delta,
    like those Kafka's log cleaner keeps: consumers step to the offset after it (kafka-python,
    aiokafka, the Java client and librdkafka all take the next fetch offset from lastOffsetDelta).
    Compression bits are cleared: there is nothing to decompress."""
    head = bytearray(_HEADER.pack(base_offset, BATCH_HEADER_SIZE - _LOG_OVERHEAD, partition_leader_epoch, MAGIC, 0,
                                  attributes & ~0x07, last_offset_delta, base_timestamp, max_timestamp,
                                  producer_id, producer_epoch, base_sequence, 0))
    _UINT32.pack_into(head, _CRC_POS, crc32c.crc32c(memoryview(head)[_ATTRIBUTES_POS:]))
    return bytes(head)


def emptied(batch, base_offset: int) -> bytes:
    """The stored ``batch`` without its records, at ``base_offset`` (see :func:`empty_batch`)."""
    h = parse_header(batch)
    return empty_batch(base_offset, h.last_offset_delta, producer_id=h.producer_id, producer_epoch=h.producer_epoch,
                       base_sequence=h.base_sequence, base_timestamp=h.base_timestamp, max_timestamp=h.max_timestamp,
                       attributes=h.attributes, partition_leader_epoch=h.partition_leader_epoch)


def _check_buildable(records: list[Record], compression: int, timestamp_type: int) -> None:
    """Refuse what would not read back as given."""
    if not records:
        raise ValueError("a batch needs at least one record")
    if not COMPRESSION_NONE <= compression <= COMPRESSION_ZSTD:
        raise ValueError(f"unknown compression codec {compression}")
    if timestamp_type not in (0, 1):
        raise ValueError(f"timestamp_type must be 0 or 1, not {timestamp_type}")
    previous = -1
    for r in records:
        if not previous < r.offset_delta <= 0x7FFFFFFF:
            raise ValueError(f"offset deltas must increase within int32: {r.offset_delta} after {previous}")
        previous = r.offset_delta
    # baseTimestamp -1 means "no timestamps" to readers (aiokafka reports them as None): an untimed
    # first record may not be followed by timed ones.
    if records[0].timestamp == NO_TIMESTAMP and any(r.timestamp != NO_TIMESTAMP for r in records):
        raise ValueError("an untimed (-1) first record cannot come before timestamped ones")

