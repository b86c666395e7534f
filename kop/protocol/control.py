"""Transaction markers: Kafka's control batches (KIP-98), built and read without a record codec.

A control batch is a v2 batch (records.py) with ``isControl`` and ``isTransactional`` set, the
producer id and epoch of the transaction it ends, ``baseSequence`` -1, and exactly one record::

    key   = version (int16, 0) + type (int16: 0 ABORT, 1 COMMIT)
    value = version (int16, 0) + coordinatorEpoch (int32)

It takes one offset, as every batch does. Consumers never hand it to the application; a
``read_committed`` consumer uses an ABORT marker to stop skipping the aborted producer's batches
(the aborted transactions of a Fetch answer say where to start skipping).

Sans-IO: bytes in, objects out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c

from .records import BATCH_HEADER_SIZE, MAGIC, parse_header

ABORT, COMMIT = 0, 1
CONTROL_ATTRIBUTES = 0x30  # isTransactional (bit 4) | isControl (bit 5); no compression, CreateTime
_HEADER = struct.Struct(">qiibIhiqqqhii")
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")
_LOG_OVERHEAD = 12  # baseOffset + batchLength
_CRC_POS, _ATTRIBUTES_POS = 17, 21


@dataclass(frozen=True, slots=True)
class Marker:
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int = 0


def _record(marker: Marker) -> bytes:
    key = _KEY.pack(0, COMMIT if marker.commit else ABORT)
    value = _VALUE.pack(0, marker.coordinator_epoch)
    # attributes, timestampDelta 0, offsetDelta 0 (zigzag varints: 0 is one byte), key length 4 and
    # value length 6 (zigzag: 8 and 12), no headers.
    body = bytes([0, 0, 0, 8]) + key + bytes([12]) + value + bytes([0])
    return bytes([len(body) << 1]) + body  # the record's length, a zigzag varint (< 64: one byte)


def control_batch(marker: Marker, base_offset: int = 0, timestamp_ms: int = 0) -> bytes:
    """The marker as a Kafka v2 control batch at ``base_offset``."""
    record = _record(marker)
    size = BATCH_HEADER_SIZE + len(record)
    head = bytearray(_HEADER.pack(base_offset, size - _LOG_OVERHEAD, -1, MAGIC, 0, CONTROL_ATTRIBUTES, 0,
                                  timestamp_ms, timestamp_ms, marker.producer_id, marker.producer_epoch, -1, 1))
    head += record
    struct.pack_into(">I", head, _CRC_POS, crc32c.crc32c(memoryview(head)[_ATTRIBUTES_POS:]))
    return bytes(head)


def marker_of(batch) -> Marker | None:
    """The marker a control batch carries; None for a batch that is not a valid marker (an unknown
    control type, or a batch that is not a control batch)."""
    header = parse_header(batch)
    if not header.is_control or header.records_count != 1 or header.compression != 0:
        return None
    view = memoryview(batch)[BATCH_HEADER_SIZE:]
    # length, attributes, timestampDelta, offsetDelta: one byte each in every marker Kafka or kop writes;
    # a longer encoding is not one kop reads.
    if len(view) < 5 or view[4] != 8 or len(view) < 5 + 4 + 1 + 6:
        return None
    version, kind = _KEY.unpack_from(view, 5)
    if version != 0 or kind not in (ABORT, COMMIT) or view[9] != 12:
        return None
    _, coordinator_epoch = _VALUE.unpack_from(view, 10)
    return Marker(header.producer_id, header.producer_epoch, kind == COMMIT, coordinator_epoch)
