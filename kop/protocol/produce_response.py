"""Produce responses (key 0, versions 0-12) encoded by hand.

Produce is the request a busy producer sends thousands of times a second, and its answer is small:
kafka.protocol's generic encoder (field objects, a data container per struct, tagged-field lists)
cost about a twentieth of kop's CPU per request; packing the few fixed fields directly does not.
tests/unit/test_hot_codecs.py checks the bytes against kafka.protocol's encoder for every version.

Layout (Kafka's ProduceResponse.json): responses [name (string), partition_responses [index
(int32), error_code (int16), base_offset (int64), from v2 log_append_time_ms (int64), from v5
log_start_offset (int64), from v8 record_errors [batch_index (int32), batch_index_error_message
(nullable string)] and error_message (nullable string)]], from v1 throttle_time_ms (int32).
Version 9 and later are flexible: compact lengths (unsigned varint of length + 1) and an empty
tagged-field section after each struct (kop sends neither current_leader nor node_endpoints).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .fetch_response import put_uvarint

FIRST_FLEXIBLE = 9
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_HEAD_V0 = struct.Struct(">ihq")  # index, error_code, base_offset
_HEAD_V2 = struct.Struct(">ihqq")  # + log_append_time_ms
_HEAD_V5 = struct.Struct(">ihqqq")  # + log_start_offset


@dataclass(slots=True)
class PartitionProduceResponse:
    index: int
    error_code: int
    base_offset: int
    log_append_time_ms: int = -1
    log_start_offset: int = -1
    error_message: str | None = None
    record_errors: list[tuple[int, str | None]] = field(default_factory=list)  # (batch_index, message)


@dataclass(slots=True)
class TopicProduceResponse:
    name: str
    partition_responses: list[PartitionProduceResponse]


@dataclass(slots=True)
class ProduceResponseData:
    responses: list[TopicProduceResponse]
    throttle_time_ms: int = 0

    def encode(self, version: int) -> bytes:
        flexible = version >= FIRST_FLEXIBLE
        out = bytearray()
        _length(out, len(self.responses), flexible, array=True)
        for topic in self.responses:
            _string(out, topic.name, flexible)
            _length(out, len(topic.partition_responses), flexible, array=True)
            for p in topic.partition_responses:
                if version >= 5:
                    out += _HEAD_V5.pack(p.index, p.error_code, p.base_offset, p.log_append_time_ms,
                                         p.log_start_offset)
                elif version >= 2:
                    out += _HEAD_V2.pack(p.index, p.error_code, p.base_offset, p.log_append_time_ms)
                else:
                    out += _HEAD_V0.pack(p.index, p.error_code, p.base_offset)
                if version >= 8:
                    _length(out, len(p.record_errors), flexible, array=True)
                    for batch_index, message in p.record_errors:
                        out += _I32.pack(batch_index)
                        _string(out, message, flexible)
                        if flexible:
                            out.append(0)
                    _string(out, p.error_message, flexible)
                if flexible:
                    out.append(0)  # partition's tagged fields
            if flexible:
                out.append(0)  # topic's tagged fields
        if version >= 1:
            out += _I32.pack(self.throttle_time_ms)
        if flexible:
            out.append(0)  # response's tagged fields
        return bytes(out)


def _length(buf: bytearray, n: int, flexible: bool, array: bool = False) -> None:
    """A length, or -1 for null: compact (n + 1, 0 for null) when flexible, else int32/int16."""
    if flexible:
        put_uvarint(buf, n + 1)
    else:
        buf += (_I32 if array else _I16).pack(n)


def _string(buf: bytearray, value: str | None, flexible: bool) -> None:
    if value is None:
        _length(buf, -1, flexible)
        return
    data = value.encode()
    _length(buf, len(data), flexible)
    buf += data
