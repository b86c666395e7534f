"""The payload of a Pulsar *batch entry*, sans-IO: ``num_messages_in_batch`` messages, each
``[size u32][SingleMessageMetadata][payload]``, the whole run compressed as one when the entry's
MessageMetadata names a codec (LZ4 raw block, ZLIB, ZSTD or SNAPPY raw, with ``uncompressed_size``).

This is how Pulsar's own clients batch, so native consumers read such entries message by message.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import cramjam

from . import commands as cmd

_U32 = struct.Struct(">I")


class EntryError(ValueError):
    """An entry whose payload does not parse (corrupt, or a codec kop cannot read)."""


@dataclass(slots=True)
class Single:
    """One message of a batch entry (or the entry itself when it is not batched)."""

    metadata: dict[str, Any]  # SingleMessageMetadata fields (MessageMetadata for an unbatched entry)
    payload: bytes


def encode_batch(messages: list[tuple[dict[str, Any], bytes]]) -> bytes:
    """The uncompressed batch payload of ``(SingleMessageMetadata fields, payload)`` pairs."""
    out = bytearray()
    encode = cmd.SingleMessageMetadata.encode
    for fields, payload in messages:
        fields["payload_size"] = len(payload)
        single = encode(fields)
        out += _U32.pack(len(single))
        out += single
        out += payload
    return bytes(out)


def decompress(metadata: dict[str, Any], payload: bytes, limit: int) -> bytes:
    codec = metadata.get("compression", cmd.NONE)
    if codec == cmd.NONE:
        return payload
    size = metadata.get("uncompressed_size", 0)
    if size > limit:
        raise EntryError(f"entry inflates to {size} bytes, more than {limit}")
    try:
        if codec == cmd.LZ4:
            return bytes(cramjam.lz4.decompress_block(payload, output_len=size))
        if codec == cmd.ZLIB:
            out = zlib.decompressobj()
            data = out.decompress(payload, size + 1)
            if len(data) > size:
                raise EntryError("ZLIB entry inflates past its uncompressed_size")
            return data
        if codec == cmd.ZSTD:
            return bytes(cramjam.zstd.decompress(payload, output_len=size))
        if codec == cmd.SNAPPY:
            return bytes(cramjam.snappy.decompress_raw(payload))
    except EntryError:
        raise
    except Exception as exc:
        raise EntryError(f"cannot decompress a {codec} entry: {type(exc).__name__}: {exc}") from exc
    raise EntryError(f"unknown Pulsar compression {codec}")


def compress(codec: int, data: bytes) -> bytes:
    """A batch payload compressed as Pulsar's clients do (fast levels: kop compresses what a client
    already compressed once, on the produce path)."""
    if codec == cmd.LZ4:
        return bytes(cramjam.lz4.compress_block(data, store_size=False))
    if codec == cmd.ZLIB:
        return zlib.compress(data, 1)
    if codec == cmd.ZSTD:
        return bytes(cramjam.zstd.compress(data, level=1))
    if codec == cmd.SNAPPY:
        return bytes(cramjam.snappy.compress_raw(data))
    raise ValueError(f"unknown Pulsar compression {codec}")


def split(metadata: dict[str, Any], payload: bytes, limit: int = 64 * 1024 * 1024) -> list[Single]:
    """The messages of one entry, in batch-index order."""
    if "num_messages_in_batch" not in metadata:
        return [Single(metadata, decompress(metadata, payload, limit))]
    data = decompress(metadata, payload, limit)
    count = metadata["num_messages_in_batch"]
    singles: list[Single] = []
    pos, end = 0, len(data)
    decode = cmd.SingleMessageMetadata.decode
    try:
        for _ in range(count):
            (size,) = _U32.unpack_from(data, pos)
            meta_end = pos + 4 + size
            fields = decode(data, pos + 4, meta_end)
            payload_end = meta_end + fields.get("payload_size", 0)
            if meta_end > end or payload_end > end:
                raise EntryError("batch message runs past the entry")
            singles.append(Single(fields, data[meta_end:payload_end]))
            pos = payload_end
    except (struct.error, ValueError) as exc:
        if isinstance(exc, EntryError):
            raise
        raise EntryError(f"malformed batch entry: {exc}") from exc
    return singles


def first_message(metadata: dict[str, Any], data: bytes) -> Single:
    """The first message of an entry whose payload ``data`` is already inflated."""
    if "num_messages_in_batch" not in metadata:
        return Single(metadata, data)
    try:
        (size,) = _U32.unpack_from(data, 0)
        fields = cmd.SingleMessageMetadata.decode(data, 4, 4 + size)
    except (struct.error, ValueError) as exc:
        raise EntryError(f"malformed batch entry: {exc}") from exc
    end = 4 + size + fields.get("payload_size", 0)
    if end > len(data):
        raise EntryError("batch message runs past the entry")
    return Single(fields, data[4 + size:end])


def properties_of(fields: dict[str, Any]) -> dict[str, str]:
    return {kv["key"]: kv.get("value", "") for kv in fields.get("properties", ())}


def key_values(properties: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in properties.items()]
