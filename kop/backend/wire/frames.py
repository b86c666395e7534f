"""Framing of Pulsar's binary protocol, sans-IO: bytes in, frames out; commands in, bytes out.

A frame is ``[total size u32][command size u32][BaseCommand]``, big-endian. Frames that carry a message
(SEND from a client, MESSAGE from a broker) continue with::

    [0x0e02 u16][size u32][BrokerEntryMetadata]   only broker -> client, when the broker exposes it
    [0x0e01 u16][CRC32C u32]                       checksum of everything after it
    [metadata size u32][MessageMetadata][payload]

A batch entry's payload (``num_messages_in_batch`` set, possibly compressed as a whole) is a run of
``[size u32][SingleMessageMetadata][payload]``; see entries.py.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from crc32c import crc32c

from . import commands as cmd
from .proto import DecodeError, read_varint, write_varint

MAGIC_CRC32C = 0x0E01
MAGIC_BROKER_ENTRY_METADATA = 0x0E02
_U32 = struct.Struct(">I")
_U32x2 = struct.Struct(">II")
_U16 = struct.Struct(">H")
# Room for a frame's command and metadata on top of the broker's max message size.
FRAME_OVERHEAD = 64 * 1024


class FrameError(ValueError):
    """The peer sent bytes that are not a valid frame: the connection must be closed."""


@dataclass(slots=True)
class Frame:
    type: int
    body: dict[str, Any]
    metadata: dict[str, Any] | None = None  # MessageMetadata of a MESSAGE frame
    payload: bytes | None = None  # what follows the metadata
    broker_entry: dict[str, Any] | None = None  # BrokerEntryMetadata, when the broker sent it
    checksum_ok: bool = True


def command(command_type: int, body: dict[str, Any] | None = None) -> bytes:
    out = bytearray()
    cmd.BaseCommand.encode_into(out, {"type": command_type, cmd.body_field(command_type): body or {}})
    return _U32x2.pack(len(out) + 4, len(out)) + out


def send_command(producer_id: int, sequence_id: int, num_messages: int, highest_sequence_id: int = 0) -> bytearray:
    """The BaseCommand of a SEND, hand-encoded: it is built once per entry kop writes."""
    body = bytearray(b"\x08")
    write_varint(body, producer_id)
    body.append(0x10)
    write_varint(body, sequence_id)
    if num_messages != 1:
        body.append(0x18)
        write_varint(body, num_messages)
    if highest_sequence_id:
        body.append(0x30)
        write_varint(body, highest_sequence_id)
    out = bytearray(b"\x08\x06\x32")
    write_varint(out, len(body))
    out += body
    return out


def payload_frame(base_command: bytes | bytearray, metadata: bytes | bytearray, payload) -> list:
    """A frame carrying a message, as chunks for ``transport.writelines`` (the payload is not copied)."""
    head = _U32.pack(len(metadata)) + metadata
    checksum = crc32c(payload, value=crc32c(head))
    total = 4 + len(base_command) + 2 + 4 + len(head) + len(payload)
    return [_U32x2.pack(total, len(base_command)) + base_command + _U16.pack(MAGIC_CRC32C)
            + _U32.pack(checksum) + head, payload]


class FrameDecoder:
    """Collects received bytes and cuts them into frames; checks each frame's size before buffering
    past it."""

    def __init__(self, max_frame_size: int = 5 * 1024 * 1024 + FRAME_OVERHEAD) -> None:
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        pos = 0
        end = len(buffer)
        while end - pos >= 4:
            (total,) = _U32.unpack_from(buffer, pos)
            if total > self.max_frame_size or total < 4:
                raise FrameError(f"frame of {total} bytes (limit {self.max_frame_size})")
            if end - pos - 4 < total:
                break
            frames.append(decode_frame(memoryview(buffer)[pos + 4:pos + 4 + total]))
            pos += 4 + total
        if pos:
            del buffer[:pos]
        return frames


def decode_frame(frame: memoryview) -> Frame:
    """One frame without its total-size prefix."""
    try:
        return _decode(frame)
    except (DecodeError, struct.error, KeyError) as exc:
        raise FrameError(f"malformed frame: {exc}") from exc
    finally:
        frame.release()


def _send_receipt(data, pos: int, end: int) -> dict[str, Any]:
    """CommandSendReceipt inside its BaseCommand, read directly: one arrives per entry kop writes.
    Gives the same dict as the generic decoder (tests/unit/test_wire_codec.py)."""
    length, pos = read_varint(data, pos)
    if pos + length != end:
        raise DecodeError("send receipt does not fill its frame")
    body: dict[str, Any] = {}
    while pos < end:
        key, pos = read_varint(data, pos)
        if key == 0x1A:  # message_id
            size, pos = read_varint(data, pos)
            body["message_id"] = cmd.MessageIdData.decode(data, pos, pos + size)
            pos += size
        elif key & 7 == 0:
            value, pos = read_varint(data, pos)
            name = _RECEIPT_FIELDS.get(key >> 3)
            if name is not None:
                body[name] = value
        else:
            raise DecodeError(f"send receipt field {key >> 3} of wire type {key & 7}")
    return body


_RECEIPT_FIELDS = {1: "producer_id", 2: "sequence_id", 4: "highest_sequence_id"}


def _decode(frame: memoryview) -> Frame:
    (command_size,) = _U32.unpack_from(frame, 0)
    if command_size + 4 > len(frame):
        raise FrameError("command runs past the frame")
    if frame[4] == 0x08 and frame[5] == cmd.SEND_RECEIPT and frame[6] == 0x3A and command_size + 4 == len(frame):
        return Frame(cmd.SEND_RECEIPT, _send_receipt(frame, 7, 4 + command_size))
    base = cmd.BaseCommand.decode(frame, 4, 4 + command_size)
    command_type = base.get("type")
    if command_type is None:
        raise FrameError("command without a type")
    try:
        body = base.get(cmd.body_field(command_type), {})
    except KeyError:
        body = {}  # a command kop does not know (the connection ignores it)
    result = Frame(command_type, body)
    pos = 4 + command_size
    if pos == len(frame):
        return result
    (magic,) = _U16.unpack_from(frame, pos)
    if magic == MAGIC_BROKER_ENTRY_METADATA:
        (size,) = _U32.unpack_from(frame, pos + 2)
        result.broker_entry = cmd.BrokerEntryMetadata.decode(frame, pos + 6, pos + 6 + size)
        pos += 6 + size
        (magic,) = _U16.unpack_from(frame, pos)
    if magic == MAGIC_CRC32C:
        (checksum,) = _U32.unpack_from(frame, pos + 2)
        pos += 6
        result.checksum_ok = crc32c(frame[pos:]) == checksum
    (metadata_size,) = _U32.unpack_from(frame, pos)
    meta_end = pos + 4 + metadata_size
    if meta_end > len(frame):
        raise FrameError("message metadata runs past the frame")
    result.metadata = cmd.MessageMetadata.decode(frame, pos + 4, meta_end)
    result.payload = bytes(frame[meta_end:])
    return result
