"""A small protobuf (proto2) codec for the messages of Pulsar's binary protocol that kop uses.

Sans-IO and pure: messages are declared once as field tables (number -> name, kind) from the protocol's
facts (Pulsar's PulsarApi.proto: field numbers and types), decoded into plain dicts and encoded from
dicts. Only the fields kop reads or writes are declared; a field a decoder does not know is skipped, as
protobuf requires, so a newer broker's additions are harmless.

Why not the ``protobuf`` package: the hot messages (CommandSend, CommandSendReceipt, CommandMessage,
MessageMetadata) are tiny, and a table walk over a handful of varints costs less in Python than
building and reading a generated message object; nothing else needs more than this.
"""

from __future__ import annotations

from typing import Any

# Field kinds. Scalars are varints except BYTES/STRING (length-delimited) and nested messages.
U64, I64, I32, U32, BOOL, ENUM, STRING, BYTES = "u64", "i64", "i32", "u32", "bool", "enum", "string", "bytes"
VARINT_KINDS = frozenset((U64, I64, I32, U32, BOOL, ENUM))


class DecodeError(ValueError):
    """Bytes that are not a valid encoding of the declared message."""


class Message:
    """A declared message: ``fields`` maps field number -> (name, kind, repeated).

    ``kind`` is one of the scalar kinds above or another :class:`Message` (declared lazily by name
    through :func:`declare` so messages can refer to each other)."""

    __slots__ = ("name", "fields", "by_name", "_ordered")

    def __init__(self, name: str, fields: dict[int, tuple]) -> None:
        self.name = name
        self.fields: dict[int, tuple[str, Any, bool]] = {}
        for number, spec in fields.items():
            field_name, kind = spec[0], spec[1]
            repeated = len(spec) > 2 and spec[2] == "repeated"
            self.fields[number] = (field_name, kind, repeated)
        self.by_name = {spec[0]: (number, spec[1], spec[2]) for number, spec in self.fields.items()}
        self._ordered = sorted(self.by_name.items(), key=lambda item: item[1][0])

    # -- encoding -------------------------------------------------------------------------------

    def encode(self, values: dict[str, Any]) -> bytes:
        out = bytearray()
        self.encode_into(out, values)
        return bytes(out)

    def encode_into(self, out: bytearray, values: dict[str, Any]) -> None:
        for name, (number, kind, repeated) in self._ordered:
            value = values.get(name)
            if value is None:
                continue
            if repeated:
                for item in value:
                    _encode_field(out, number, kind, item)
            else:
                _encode_field(out, number, kind, value)

    # -- decoding -------------------------------------------------------------------------------

    def decode(self, data, start: int = 0, end: int | None = None) -> dict[str, Any]:
        """The fields present in ``data[start:end]``; repeated fields as lists."""
        if end is None:
            end = len(data)
        result: dict[str, Any] = {}
        fields = self.fields
        pos = start
        while pos < end:
            key, pos = read_varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                value, pos = read_varint(data, pos)
                spec = fields.get(number)
                if spec is None:
                    continue
                name, kind, repeated = spec
                if kind in VARINT_KINDS:
                    value = _varint_value(kind, value)
                else:
                    raise DecodeError(f"{self.name}.{name}: varint where {kind} expected")
            elif wire_type == 2:
                length, pos = read_varint(data, pos)
                if pos + length > end:
                    raise DecodeError(f"{self.name}: field {number} runs past the end")
                spec = fields.get(number)
                chunk_start, pos = pos, pos + length
                if spec is None:
                    continue
                name, kind, repeated = spec
                if isinstance(kind, Message):
                    value = kind.decode(data, chunk_start, pos)
                elif kind == STRING:
                    value = bytes(data[chunk_start:pos]).decode("utf-8", "replace")
                elif kind == BYTES:
                    value = bytes(data[chunk_start:pos])
                elif kind in VARINT_KINDS and repeated:  # packed repeated scalars
                    items, p = [], chunk_start
                    while p < pos:
                        raw, p = read_varint(data, p)
                        items.append(_varint_value(kind, raw))
                    result.setdefault(name, []).extend(items)
                    continue
                else:
                    raise DecodeError(f"{self.name}.{name}: length-delimited where {kind} expected")
            elif wire_type == 1:
                pos += 8
                continue
            elif wire_type == 5:
                pos += 4
                continue
            else:
                raise DecodeError(f"{self.name}: wire type {wire_type} not supported")
            if repeated:
                result.setdefault(name, []).append(value)
            else:
                result[name] = value
        if pos != end:
            raise DecodeError(f"{self.name}: field runs past the end")
        return result


def _varint_value(kind: str, raw: int) -> Any:
    if kind == BOOL:
        return raw != 0
    if kind in (I64, I32) and raw >= 1 << 63:
        return raw - (1 << 64)  # negative int32/int64 are sign-extended to 64 bits on the wire
    return raw


def _encode_field(out: bytearray, number: int, kind: Any, value: Any) -> None:
    if isinstance(kind, Message):
        body = bytearray()
        kind.encode_into(body, value)
        write_varint(out, number << 3 | 2)
        write_varint(out, len(body))
        out += body
    elif kind == STRING or kind == BYTES:
        data = value.encode() if isinstance(value, str) else value
        write_varint(out, number << 3 | 2)
        write_varint(out, len(data))
        out += data
    else:
        write_varint(out, number << 3)
        if kind == BOOL:
            value = 1 if value else 0
        elif value < 0:
            value += 1 << 64
        write_varint(out, value)


def write_varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def varint_bytes(value: int) -> bytes:
    out = bytearray()
    write_varint(out, value)
    return bytes(out)


def read_varint(data, pos: int) -> tuple[int, int]:
    try:
        byte = data[pos]
    except IndexError:
        raise DecodeError("truncated varint") from None
    if byte < 0x80:
        return byte, pos + 1
    result, shift = byte & 0x7F, 7
    while True:
        pos += 1
        try:
            byte = data[pos]
        except IndexError:
            raise DecodeError("truncated varint") from None
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")
