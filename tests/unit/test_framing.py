"""kop.protocol.framing: 4-byte size prefix, size checked before buffering, any chunking."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kop.protocol.errors import ProtocolViolation
from kop.protocol.framing import FrameDecoder

MAX = 4096


def framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def payload_of(n: int, seed: int = 0) -> bytes:
    return bytes((seed + i * 7) & 0xFF for i in range(n))


FRAMES = [payload_of(8, 1), payload_of(100, 2), payload_of(9, 3), payload_of(MAX, 4), payload_of(8, 5)]
STREAM = b"".join(framed(f) for f in FRAMES)


def feed_all(decoder: FrameDecoder, chunks) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def test_one_whole_frame():
    dec = FrameDecoder(MAX)
    frame = payload_of(20)
    assert dec.feed(framed(frame)) == [frame]
    assert dec.buffered == 0


def test_nothing_until_complete():
    dec = FrameDecoder(MAX)
    data = framed(payload_of(20))
    assert dec.feed(data[:3]) == []
    assert dec.feed(data[3:10]) == []
    assert dec.feed(data[10:-1]) == []
    assert dec.feed(data[-1:]) == [payload_of(20)]
    assert dec.buffered == 0


def test_several_frames_in_one_chunk():
    dec = FrameDecoder(MAX)
    assert dec.feed(STREAM) == FRAMES
    assert dec.buffered == 0


def test_several_frames_and_a_partial_one():
    dec = FrameDecoder(MAX)
    tail = framed(payload_of(50, 9))
    out = dec.feed(STREAM + tail[:30])
    assert out == FRAMES
    assert 0 < dec.buffered <= 30  # the partial frame (its size prefix may already be consumed)
    assert dec.feed(tail[30:]) == [payload_of(50, 9)]
    assert dec.buffered == 0


def test_one_byte_at_a_time():
    dec = FrameDecoder(MAX)
    out = feed_all(dec, (STREAM[i:i + 1] for i in range(len(STREAM))))
    assert out == FRAMES
    assert dec.buffered == 0


def test_every_split_point():
    small = [payload_of(8, 1), payload_of(13, 2), payload_of(8, 3), payload_of(40, 4)]
    stream = b"".join(framed(f) for f in small)
    for cut in range(len(stream) + 1):
        dec = FrameDecoder(MAX)
        assert feed_all(dec, [stream[:cut], stream[cut:]]) == small, cut
        assert dec.buffered == 0
    for a in range(0, len(stream) + 1, 3):
        for b in range(a, len(stream) + 1, 5):
            dec = FrameDecoder(MAX)
            assert feed_all(dec, [stream[:a], stream[a:b], stream[b:]]) == small, (a, b)


def test_accepts_memoryview_and_bytearray():
    dec = FrameDecoder(MAX)
    data = framed(payload_of(10))
    assert dec.feed(memoryview(data)[:5]) == []
    assert dec.feed(bytearray(data[5:])) == [payload_of(10)]


def test_frames_are_read_only_and_independent():
    dec = FrameDecoder(MAX)
    frames = dec.feed(STREAM)
    assert all(f.readonly for f in frames)
    dec.feed(framed(payload_of(8, 77)))
    assert frames == FRAMES  # later feeds do not modify frames already returned


def test_frames_inside_one_chunk_are_not_copied():
    data = STREAM
    frames = FrameDecoder(MAX).feed(data)
    assert all(f.obj is data for f in frames)


def test_a_split_frame_is_collected_into_one_buffer_and_later_feeds_leave_it_alone():
    dec = FrameDecoder(MAX)
    data = framed(payload_of(100, 5)) + framed(payload_of(9, 6))
    assert dec.feed(data[:50]) == []
    (first,) = dec.feed(data[50:110])
    assert first == payload_of(100, 5) and dec.buffered > 0
    assert dec.feed(data[110:]) == [payload_of(9, 6)]
    assert first == payload_of(100, 5)


def test_a_mutable_chunk_is_copied_before_frames_are_cut_from_it():
    chunk = bytearray(framed(payload_of(10, 3)))
    (frame,) = FrameDecoder(MAX).feed(chunk)
    chunk[:] = bytes(len(chunk))
    assert frame == payload_of(10, 3)


def test_frame_of_exactly_max_size():
    dec = FrameDecoder(MAX)
    assert dec.feed(framed(payload_of(MAX))) == [payload_of(MAX)]


def test_frame_of_minimum_size_8():
    dec = FrameDecoder(MAX)
    assert dec.feed(framed(b"\x00" * 8)) == [b"\x00" * 8]


def test_oversized_frame_refused_after_the_size_prefix_only():
    dec = FrameDecoder(MAX)
    header = struct.pack(">i", MAX + 1)
    assert dec.feed(header[:3]) == []
    with pytest.raises(ProtocolViolation):
        dec.feed(header[3:])  # the 4th byte: the size is known, refused before any body byte
    assert dec.buffered <= 4


def test_oversized_frame_refused_in_one_feed_of_the_prefix():
    dec = FrameDecoder(MAX)
    with pytest.raises(ProtocolViolation):
        dec.feed(struct.pack(">i", MAX + 1))
    assert dec.buffered <= 4


def test_huge_announced_size_refused_without_allocation():
    dec = FrameDecoder(MAX)
    with pytest.raises(ProtocolViolation):
        dec.feed(struct.pack(">i", 2**31 - 1))
    assert dec.buffered <= 4


def test_oversized_frame_after_a_good_one():
    dec = FrameDecoder(MAX)
    good = framed(payload_of(8))
    assert dec.feed(good) == [payload_of(8)]
    with pytest.raises(ProtocolViolation):
        dec.feed(struct.pack(">i", MAX + 1))
    assert dec.buffered <= 4


@pytest.mark.parametrize("size", [-1, -8, -(2**31)])
def test_negative_size_refused(size):
    dec = FrameDecoder(MAX)
    with pytest.raises(ProtocolViolation):
        dec.feed(struct.pack(">i", size))


@pytest.mark.parametrize("size", [0, 1, 4, 7])
def test_too_short_size_refused(size):
    dec = FrameDecoder(MAX)
    with pytest.raises(ProtocolViolation):
        dec.feed(struct.pack(">i", size))


def test_max_frame_size_attribute():
    assert FrameDecoder(1234).max_frame_size == 1234
    assert FrameDecoder(1234).buffered == 0


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(st.binary(min_size=8, max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=20),
)
def test_random_frames_random_chunking(frames, cuts):
    stream = b"".join(framed(f) for f in frames)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in zip(points, points[1:])]
    dec = FrameDecoder(300)
    assert feed_all(dec, chunks) == frames
    assert dec.buffered == 0


@settings(max_examples=100, deadline=None)
@given(frames=st.lists(st.binary(min_size=8, max_size=64), min_size=1, max_size=5),
       size=st.integers(65, 2**31 - 1))
def test_random_good_frames_then_an_oversized_one(frames, size):
    dec = FrameDecoder(64)
    stream = b"".join(framed(f) for f in frames)
    assert dec.feed(stream) == frames
    with pytest.raises(ProtocolViolation):
        dec.feed(struct.pack(">i", size))
    assert dec.buffered <= 4
