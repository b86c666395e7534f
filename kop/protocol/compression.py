"""Compressing a record batch's records as Kafka clients expect them (sans-IO); inflate.py undoes it.

gzip, Xerial-framed snappy (what the Java client writes; every client reads it), the LZ4 frame
format, a zstd frame. Fast levels: kop compresses again on every fetch of a ``pulsar``-format entry.
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.frame

from .inflate import GZIP, LZ4, SNAPPY, ZSTD

_XERIAL_HEADER = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
_SNAPPY_BLOCK = 32 * 1024


def compress(codec: int, data) -> bytes:
    """``data`` compressed with Kafka codec ``codec`` (1 gzip, 2 snappy, 3 lz4, 4 zstd)."""
    if codec == GZIP:
        deflate = zlib.compressobj(1, zlib.DEFLATED, 31)
        return deflate.compress(data) + deflate.flush()
    if codec == SNAPPY:
        view = memoryview(data)
        out = bytearray(_XERIAL_HEADER)
        for start in range(0, len(view), _SNAPPY_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(view[start:start + _SNAPPY_BLOCK]))
            out += struct.pack(">i", len(block))
            out += block
        return bytes(out)
    if codec == LZ4:
        return lz4.frame.compress(bytes(data))
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data, level=1))
    raise ValueError(f"unknown Kafka compression codec {codec}")
