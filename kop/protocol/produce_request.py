"""Produce requests (key 0, versions 3-12) decoded by hand, so record batches are not copied.

kafka.protocol's generated decoder copies every partition's ``records`` into a new ``bytes``; this
decoder returns them as ``memoryview`` slices of the frame (itself usually a view of the bytes the
socket delivered, see framing.py), so the batch bytes reach the Pulsar client with one copy, the one
the client's binding makes. The decoded objects carry kafka.protocol's field names, so handlers do
not care which decoder ran; tests/unit/test_produce_request.py checks this decoder against
kafka.protocol's encoder for every version.

Layout (Kafka's ProduceRequest.json): transactional_id (nullable string), acks (int16), timeout_ms
(int32), topic_data [name (string), partition_data [index (int32), records (nullable records)]].
From version 9 on (flexible), strings, arrays and records are "compact" (unsigned-varint lengths,
plus one) and every struct ends with tagged fields, which kop skips.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import ProtocolViolation

_I16, _I32 = struct.Struct(">h"), struct.Struct(">i")
API_KEY = 0
FIRST_FLEXIBLE = 9


@dataclass(slots=True)
class PartitionProduceData:
    index: int
    records: memoryview | None


@dataclass(slots=True)
class TopicProduceData:
    name: str
    partition_data: list[PartitionProduceData]


@dataclass
class ProduceRequestData:
    transactional_id: str | None
    acks: int
    timeout_ms: int
    topic_data: list[TopicProduceData]
    _version: int = 0

    @property
    def API_VERSION(self) -> int:  # noqa: N802 - kafka.protocol's name
        return self._version

    def encode(self, version: int) -> bytes:
        """kafka.protocol's encoding of the same request (for tests and tools, not the hot path)."""
        from kafka.protocol.producer import ProduceRequest
        topic_cls = ProduceRequest.TopicProduceData
        return bytes(ProduceRequest(transactional_id=self.transactional_id, acks=self.acks, timeout_ms=self.timeout_ms,
                                    topic_data=[topic_cls(name=t.name, partition_data=[topic_cls.PartitionProduceData(
                                        index=p.index, records=None if p.records is None else bytes(p.records))
                                        for p in t.partition_data]) for t in self.topic_data]).encode(version=version))


class _Reader:
    __slots__ = ("view", "pos", "flexible")

    def __init__(self, view: memoryview, pos: int, flexible: bool) -> None:
        self.view, self.pos, self.flexible = view, pos, flexible

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.view):
            raise ProtocolViolation(f"Produce request truncated: {n} bytes wanted at {self.pos} of {len(self.view)}")

    def int16(self) -> int:
        self.need(2)
        (value,) = _I16.unpack_from(self.view, self.pos)
        self.pos += 2
        return value

    def int32(self) -> int:
        self.need(4)
        (value,) = _I32.unpack_from(self.view, self.pos)
        self.pos += 4
        return value

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            self.need(1)
            byte = self.view[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise ProtocolViolation("Produce request: varint longer than 5 bytes")

    def length(self) -> int:
        """A length prefix; -1 is null."""
        return self.uvarint() - 1 if self.flexible else self.int16()

    def array_length(self) -> int:
        n = self.uvarint() - 1 if self.flexible else self.int32()
        if n > len(self.view) - self.pos:  # each element takes at least a byte
            raise ProtocolViolation(f"Produce request: array of {n} elements in {len(self.view) - self.pos} bytes")
        return n

    def string(self, nullable: bool) -> str | None:
        n = self.length()
        if n < 0:
            if nullable and n == -1:
                return None
            raise ProtocolViolation(f"Produce request: string length {n}")
        self.need(n)
        try:
            value = str(self.view[self.pos:self.pos + n], "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation(f"Produce request: string is not UTF-8: {exc}") from exc
        self.pos += n
        return value

    def records(self) -> memoryview | None:
        n = self.uvarint() - 1 if self.flexible else self.int32()
        if n == -1:
            return None
        if n < 0:
            raise ProtocolViolation(f"Produce request: records length {n}")
        self.need(n)
        view = self.view[self.pos:self.pos + n]
        self.pos += n
        return view

    def tagged_fields(self) -> None:
        if self.flexible:
            for _ in range(self.uvarint()):
                self.uvarint()  # tag
                size = self.uvarint()
                self.need(size)
                self.pos += size


def decode(version: int, frame, offset: int) -> tuple[ProduceRequestData, int]:
    """The request whose body starts at ``offset``, and where it ends."""
    r = _Reader(memoryview(frame).cast("B") if not isinstance(frame, memoryview) else frame, offset,
                version >= FIRST_FLEXIBLE)
    transactional_id = r.string(nullable=True)
    acks, timeout_ms = r.int16(), r.int32()
    topics = []
    for _ in range(max(r.array_length(), 0)):
        name = r.string(nullable=False)
        parts = []
        for _ in range(max(r.array_length(), 0)):
            index = r.int32()
            parts.append(PartitionProduceData(index, r.records()))
            r.tagged_fields()
        topics.append(TopicProduceData(name, parts))
        r.tagged_fields()
    r.tagged_fields()
    return ProduceRequestData(transactional_id, acks, timeout_ms, topics, version), r.pos
