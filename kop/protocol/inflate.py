"""Decompressing a record batch's payload without letting it grow past a limit (sans-IO).

A compressed batch is small on the wire and may be huge once inflated: 100 MiB of zeros is ~100 KiB
of gzip, and a frame-sized blob of them would inflate to ~100 GiB, so the ``pulsar`` entry format
(the one that decodes records) inflates here, never past ``limit`` bytes (compression.py compresses).

Each codec, as Kafka writes it: gzip (one or more gzip members), snappy (raw, or Xerial-framed
blocks, each raw block stating its inflated length), lz4 (the LZ4 frame format), zstd (a zstd
frame; inflated into a buffer of ``limit`` bytes, so more does not fit).
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.frame

GZIP, SNAPPY, LZ4, ZSTD = 1, 2, 3, 4
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = 16  # magic, version, compatible version


class TooLarge(ValueError):
    """The payload inflates past the limit."""


class Undecodable(ValueError):
    """The payload is not valid data of its codec."""


_zstd_buffer = bytearray()  # reused: the event loop inflates one payload at a time


def inflate(codec: int, payload: bytes, limit: int) -> bytes:
    try:
        if codec == GZIP:
            return _gzip(payload, limit)
        if codec == SNAPPY:
            return _snappy(payload, limit)
        if codec == LZ4:
            return _lz4(payload, limit)
        if codec == ZSTD:
            return _zstd(payload, limit)
    except (TooLarge, Undecodable):
        raise
    except Exception as exc:  # the codecs raise their own error types
        raise Undecodable(f"{type(exc).__name__}: {exc}") from exc
    raise Undecodable(f"unknown compression codec {codec}")


def _gzip(payload: bytes, limit: int) -> bytes:
    out = bytearray()
    rest = payload
    while rest:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += member.decompress(rest, limit + 1 - len(out))
        if len(out) > limit or member.unconsumed_tail:
            raise TooLarge(f"gzip payload inflates past {limit} bytes")
        if not member.eof:
            raise Undecodable("truncated gzip payload")
        rest = member.unused_data
    return bytes(out)


def _snappy(payload: bytes, limit: int) -> bytes:
    if not payload.startswith(_XERIAL_MAGIC):
        if cramjam.snappy.decompress_raw_len(payload) > limit:
            raise TooLarge(f"snappy payload inflates past {limit} bytes")
        return bytes(cramjam.snappy.decompress_raw(payload))
    blocks, total, pos = [], 0, _XERIAL_HEADER
    while pos < len(payload):
        if pos + 4 > len(payload):
            raise Undecodable("truncated snappy block length")
        (size,) = struct.unpack_from(">i", payload, pos)
        if size < 0 or pos + 4 + size > len(payload):
            raise Undecodable(f"snappy block of {size} bytes runs past the payload")
        block = payload[pos + 4:pos + 4 + size]
        total += cramjam.snappy.decompress_raw_len(block)
        if total > limit:
            raise TooLarge(f"snappy payload inflates past {limit} bytes")
        blocks.append(block)
        pos += 4 + size
    return b"".join(bytes(cramjam.snappy.decompress_raw(b)) for b in blocks)


def _lz4(payload: bytes, limit: int) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    out = decompressor.decompress(payload, max_length=limit + 1)
    if len(out) > limit:
        raise TooLarge(f"lz4 payload inflates past {limit} bytes")
    if not decompressor.eof:
        raise Undecodable("truncated lz4 frame")
    return out


def _zstd(payload: bytes, limit: int) -> bytes:
    global _zstd_buffer
    if len(_zstd_buffer) != limit:
        _zstd_buffer = bytearray(limit)
    try:
        size = cramjam.zstd.decompress_into(payload, _zstd_buffer)
    except Exception as exc:  # cramjam says "failed to write whole buffer" when it does not fit
        raise Undecodable(f"zstd payload is corrupt or inflates past {limit} bytes: {exc}") from exc
    return bytes(memoryview(_zstd_buffer)[:size])
