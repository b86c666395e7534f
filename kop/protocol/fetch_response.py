"""Fetch responses (key 1, versions 4-12) encoded by hand, as a list of chunks.

kafka.protocol's generated encoder copies every partition's records into one buffer; here each
partition's records stay the chunks the reader produced (a stored batch and the 8 bytes of its base
offset are separate chunks, see backend/reader.py), and the transport writes the list as it is.
tests/unit/test_fetch_response.py checks the bytes against kafka.protocol's encoder for every version.

Layout (Kafka's FetchResponse.json): throttle_time_ms (int32); from v7 error_code (int16) and
session_id (int32); responses [topic (string), partitions [partition_index (int32), error_code
(int16), high_watermark, last_stable_offset, from v5 log_start_offset (int64 each), aborted_transactions
(nullable array of [producer_id, first_offset (int64 each)], for read_committed fetches), from v11
preferred_read_replica (int32), records (nullable)]].
Version 12 is flexible: compact lengths (unsigned varint of length + 1) and an empty tagged-field
section (one zero byte) after each struct.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

FIRST_FLEXIBLE = 12
_TOP = struct.Struct(">ihi")  # throttle_time_ms, error_code, session_id
_PARTITION = struct.Struct(">ihqqq")  # partition_index, error_code, high_watermark, last_stable, log_start
_PARTITION_V4 = struct.Struct(">ihqq")  # before v5: no log_start_offset
_I32 = struct.Struct(">i")
_I64x2 = struct.Struct(">qq")


@dataclass(slots=True)
class PartitionData:
    partition_index: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int = -1
    preferred_read_replica: int = -1
    records: list = field(default_factory=list)  # chunks (bytes-like), concatenated on the wire
    aborted_transactions: list = field(default_factory=list)  # (producer id, first offset)


@dataclass(slots=True)
class FetchableTopicResponse:
    topic: str
    partitions: list[PartitionData]


@dataclass(slots=True)
class FetchResponseData:
    throttle_time_ms: int
    error_code: int
    session_id: int
    responses: list[FetchableTopicResponse]

    def encode(self, version: int) -> bytes:
        return b"".join(self.encode_chunks(version))

    def encode_chunks(self, version: int) -> list:
        flexible = version >= FIRST_FLEXIBLE
        head = bytearray(_TOP.pack(self.throttle_time_ms, self.error_code, self.session_id) if version >= 7
                         else _I32.pack(self.throttle_time_ms))
        chunks: list = [head]
        _array_length(head, len(self.responses), flexible)
        for topic in self.responses:
            name = topic.topic.encode()
            _length(head, len(name), flexible)
            head += name
            _array_length(head, len(topic.partitions), flexible)
            for p in topic.partitions:
                if version >= 5:
                    head += _PARTITION.pack(p.partition_index, p.error_code, p.high_watermark, p.last_stable_offset,
                                            p.log_start_offset)
                else:
                    head += _PARTITION_V4.pack(p.partition_index, p.error_code, p.high_watermark, p.last_stable_offset)
                _array_length(head, len(p.aborted_transactions), flexible)
                for producer_id, first_offset in p.aborted_transactions:
                    head += _I64x2.pack(producer_id, first_offset)
                    if flexible:
                        head.append(0)  # the aborted transaction's tagged fields
                if version >= 11:
                    head += _I32.pack(p.preferred_read_replica)
                size = sum(len(c) for c in p.records)
                if flexible:
                    put_uvarint(head, size + 1)
                else:
                    head += _I32.pack(size)
                if size:
                    chunks.extend(p.records)
                    head = bytearray()
                    chunks.append(head)
                if flexible:
                    head.append(0)  # partition's tagged fields
            if flexible:
                head.append(0)  # topic's tagged fields
        if flexible:
            head.append(0)  # response's tagged fields
        return [c for c in chunks if len(c)]


def put_uvarint(buf: bytearray, value: int) -> None:
    """Kafka's unsigned varint (compact lengths of flexible versions), appended to ``buf``."""
    while value > 0x7F:
        buf.append((value & 0x7F) | 0x80)
        value >>= 7
    buf.append(value)


def _array_length(buf: bytearray, n: int, flexible: bool) -> None:
    if flexible:
        put_uvarint(buf, n + 1)
    else:
        buf += _I32.pack(n)


def _length(buf: bytearray, n: int, flexible: bool) -> None:
    if flexible:
        put_uvarint(buf, n + 1)
    else:
        buf += struct.pack(">h", n)
