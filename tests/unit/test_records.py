"""kop.protocol.records, cross-checked against a second implementation (kafka-python's kafka.record)."""

from __future__ import annotations

import ast
import io
import struct
from pathlib import Path

import crc32c
import pytest
import zstandard
from aiokafka.record.default_records import DefaultRecordBatch as AioBatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatchBuilder as KafkaPyBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

from kop.protocol import records as rec
from kop.protocol.records import (
    BATCH_HEADER_SIZE,
    CorruptRecordError,
    InvalidRecordError,
    Record,
    build_batch,
    decode_records,
    parse_header,
    rewrite_base_offset,
    split_batches,
    with_base_offset,
)

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
RECORD_ERRORS = (CorruptRecordError, InvalidRecordError)

SAMPLE = [
    Record(0, 1_700_000_000_000, b"key", b"value", []),
    Record(1, 1_700_000_000_005, None, b"null key", [("h", b"\x00\xff\x01binary")]),
    Record(2, 1_699_999_999_000, b"null value", None, [("nullable", None), ("empty", b"")]),
    Record(3, 1_700_000_000_001, b"", b"", [("dup", b"1"), ("dup", b"2"), ("\u00e9t\u00e9", b"\xfe")]),
    Record(4, 1_700_000_000_002, None, None, []),
    Record(5, 1_700_000_000_003, b"big", bytes(range(256)) * 40, []),
]


# --- helpers ---------------------------------------------------------------


def kafka_python_batch(records: list[Record], codec: int, **producer) -> bytes:
    """A batch written by kafka-python, the independent encoder."""
    builder = KafkaPyBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=producer.get("is_transactional", False),
        producer_id=producer.get("producer_id", -1),
        producer_epoch=producer.get("producer_epoch", -1),
        base_sequence=producer.get("base_sequence", -1),
        batch_size=1 << 30,
    )
    for r in records:
        assert builder.append(r.offset_delta, r.timestamp, r.key, r.value, r.headers) is not None
    return bytes(builder.build())


def kafka_python_read(buf) -> list[tuple]:
    """(offset, timestamp, key, value, headers) for every record, via kafka-python's reader."""
    out = []
    memory = MemoryRecords(bytes(buf))
    while memory.has_next():
        batch = memory.next_batch()
        assert batch.validate_crc()
        out += [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    return out


def as_tuples(records: list[Record], base_offset: int = 0) -> list[tuple]:
    return [(base_offset + r.offset_delta, r.timestamp, r.key, r.value, list(r.headers)) for r in records]


def renumber(records: list[Record]) -> list[Record]:
    """The same records with offset deltas 0, 1, 2...: a batch of its own."""
    return [Record(i, r.timestamp, r.key, r.value, r.headers) for i, r in enumerate(records)]


def reseal(buf: bytearray) -> bytearray:
    """Recompute the CRC after a deliberate edit inside the CRC-covered region."""
    struct.pack_into(">I", buf, 17, crc32c.crc32c(bytes(buf[21:])))
    return buf


def patch(batch, fmt: str, pos: int, value) -> bytearray:
    buf = bytearray(batch)
    struct.pack_into(fmt, buf, pos, value)
    return reseal(buf)


def recompress(batch, codec: int, blob: bytes) -> bytearray:
    """Replace an uncompressed batch's records with ``blob`` (another encoder's output)."""
    buf = bytearray(batch[:BATCH_HEADER_SIZE]) + blob
    struct.pack_into(">i", buf, 8, len(buf) - 12)
    (attributes,) = struct.unpack_from(">h", buf, 21)
    struct.pack_into(">h", buf, 21, (attributes & ~0x07) | codec)
    return reseal(buf)


# --- decoding what another implementation wrote ----------------------------


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
def test_kafka_python_batch_splits_and_decodes(codec):
    raw = kafka_python_batch(SAMPLE, codec, producer_id=42, producer_epoch=3, base_sequence=7)
    [(header, view)] = split_batches(raw)
    assert bytes(view) == raw
    assert (header.magic, header.compression, header.records_count, header.last_offset_delta) == (2, codec, 6, 5)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 7)
    assert header.base_timestamp == SAMPLE[0].timestamp
    assert header.max_timestamp == max(r.timestamp for r in SAMPLE)
    assert header.size == len(raw) and not header.is_transactional and not header.is_control
    assert decode_records(view) == SAMPLE


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
def test_memory_records_builder_batches(codec):
    builder = MemoryRecordsBuilder(magic=2, compression_type=codec, batch_size=1 << 30, offset=0)
    for r in SAMPLE:
        builder.append(r.timestamp, r.key, r.value, r.headers)
    builder.close()
    [(_, view)] = split_batches(builder.buffer())
    assert decode_records(view) == SAMPLE


def test_zstd_frame_without_content_size():
    """Java clients stream zstd (zstd-jni ZstdOutputStream): no content size in the frame header."""
    plain = build_batch(SAMPLE)
    body = bytes(plain[BATCH_HEADER_SIZE:])
    sink = io.BytesIO()
    with zstandard.ZstdCompressor(write_content_size=False).stream_writer(sink, closefd=False) as writer:
        writer.write(body[:100])
        writer.flush()
        writer.write(body[100:])
    blob = sink.getvalue()
    assert zstandard.get_frame_parameters(blob).content_size == zstandard.CONTENTSIZE_UNKNOWN
    [(header, view)] = split_batches(recompress(plain, 4, blob))
    assert header.compression == 4
    assert decode_records(view) == SAMPLE


def test_records_of_several_frames_and_encoders():
    """Other encoders' framings: multi-frame zstd, stdlib gzip, lz4 with checksums, raw snappy."""
    import gzip

    import lz4.frame
    import snappy

    plain = build_batch(SAMPLE)
    body = bytes(plain[BATCH_HEADER_SIZE:])
    half = len(body) // 2
    blobs = {
        4: zstandard.ZstdCompressor().compress(body[:half]) + zstandard.ZstdCompressor().compress(body[half:]),
        1: gzip.compress(body, compresslevel=1),
        3: lz4.frame.compress(body, block_linked=False, content_checksum=True),
        2: snappy.compress(body),  # raw snappy, without xerial's block framing
    }
    for codec, blob in blobs.items():
        [(_, view)] = split_batches(recompress(plain, codec, blob))
        assert decode_records(view) == SAMPLE, codec


# --- what kop writes, read by another implementation -----------------------


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
def test_build_batch_read_by_kafka_python(codec):
    producer = {"producer_id": 9, "producer_epoch": 1, "base_sequence": 50}
    buf = build_batch(SAMPLE, base_offset=1000, compression=codec, **producer)
    assert isinstance(buf, bytearray)
    assert kafka_python_read(buf) == as_tuples(SAMPLE, 1000)
    header = parse_header(buf)
    assert (header.base_offset, header.compression) == (1000, codec)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (9, 1, 50)
    assert header.size == len(buf)


def test_build_batch_transactional_flag():
    buf = build_batch(SAMPLE[:1], is_transactional=True, producer_id=5, producer_epoch=0, base_sequence=0)
    header = parse_header(buf)
    assert header.is_transactional and header.attributes == 0x10
    memory = MemoryRecords(bytes(buf))
    assert memory.next_batch().is_transactional


def test_build_batch_log_append_time():
    buf = build_batch(SAMPLE, timestamp_type=1, compression=1)
    [(header, view)] = split_batches(buf)
    assert header.timestamp_type == 1 and header.compression == 1
    newest = max(r.timestamp for r in SAMPLE)
    assert {r.timestamp for r in decode_records(view)} == {newest}
    assert {t[1] for t in kafka_python_read(buf)} == {newest}


def test_build_batch_keeps_offset_delta_gaps():
    """Gaps (as after compaction) survive encoding; a Produce with gaps is refused."""
    gappy = [Record(0, 10, b"a", b"1", []), Record(3, 11, None, b"2", []), Record(7, 12, b"c", None, [])]
    buf = build_batch(gappy, base_offset=100)
    header = parse_header(buf)
    assert (header.records_count, header.last_offset_delta) == (3, 7)
    assert decode_records(buf) == gappy
    assert [t[0] for t in kafka_python_read(buf)] == [100, 103, 107]
    with pytest.raises(InvalidRecordError, match="lastOffsetDelta"):
        split_batches(buf)


def test_build_batch_accepts_buffer_header_values():
    r = Record(0, 1, memoryview(b"k"), bytearray(b"v"), [("a", bytearray(b"x")), ("b", memoryview(b"y"))])
    [decoded] = decode_records(build_batch([r]))
    assert decoded == Record(0, 1, b"k", b"v", [("a", b"x"), ("b", b"y")])


def test_build_batch_without_timestamps():
    untimed = [Record(0, -1, b"a", b"b", []), Record(1, -1, None, b"c", [])]
    assert decode_records(build_batch(untimed)) == untimed


@pytest.mark.parametrize(
    "records, kwargs",
    [
        ([], {}),
        (SAMPLE, {"compression": 5}),
        (SAMPLE, {"timestamp_type": 2}),
        ([Record(1, 0, None, None, []), Record(1, 0, None, None, [])], {}),
        ([Record(-1, 0, None, None, [])], {}),
        ([Record(1 << 31, 0, None, None, [])], {}),
        ([Record(0, -1, None, None, []), Record(1, 5, None, None, [])], {}),
    ],
    ids=["empty", "codec", "ts-type", "repeated-delta", "negative-delta", "delta-overflow", "leading-no-ts"],
)
def test_build_batch_refuses(records, kwargs):
    with pytest.raises(ValueError):
        build_batch(records, **kwargs)


# --- base offset -----------------------------------------------------------


def test_rewrite_base_offset_keeps_crc_valid():
    raw = kafka_python_batch(SAMPLE, 4)
    moved = with_base_offset(raw, 123_456_789_012)
    assert isinstance(moved, bytearray) and raw[:8] == bytes(8)  # the original is untouched
    assert moved[8:] == raw[8:]
    assert AioBatch(bytes(moved)).validate_crc()
    [(header, view)] = split_batches(moved)
    assert header.base_offset == 123_456_789_012
    assert decode_records(view) == SAMPLE  # deltas are relative to the new base
    assert [t[0] for t in kafka_python_read(moved)] == [123_456_789_012 + i for i in range(6)]


def test_rewrite_base_offset_in_place_at_position():
    first, second = build_batch(SAMPLE[:2]), build_batch(renumber(SAMPLE[2:4]), compression=3)
    buf = bytearray(first + second)
    views = split_batches(buf)
    rewrite_base_offset(buf, 50)
    rewrite_base_offset(buf, 52, pos=len(first))
    assert [h.base_offset for h, _ in split_batches(buf)] == [50, 52]
    rewrite_base_offset(views[0][1], 70)  # through a zero-copy view, too
    assert parse_header(buf).base_offset == 70
    for _, view in split_batches(buf):
        assert AioBatch(bytes(view)).validate_crc()


# --- splitting -------------------------------------------------------------


def test_split_empty():
    assert split_batches(b"") == []
    assert split_batches(memoryview(b"")) == []


def test_split_concatenated_batches_without_copying():
    parts = [build_batch(SAMPLE[:3], compression=c) for c in CODECS.values()] + [kafka_python_batch(SAMPLE, 2)]
    buf = bytearray(b"".join(parts))
    batches = split_batches(buf)
    assert [bytes(v) for _, v in batches] == [bytes(p) for p in parts]
    assert all(v.obj is buf for _, v in batches)
    assert [h.compression for h, _ in batches] == [0, 1, 2, 3, 4, 2]
    assert [decode_records(v) for _, v in batches] == [SAMPLE[:3]] * 5 + [SAMPLE]


def test_trailing_garbage_is_corrupt():
    good = build_batch(SAMPLE[:1])
    for tail in (b"\x00", b"\x00" * 16, b"\x00" * 60):
        with pytest.raises(CorruptRecordError):
            split_batches(good + tail)


def test_parse_header_fields():
    buf = build_batch(SAMPLE, base_offset=7, producer_id=1, producer_epoch=2, base_sequence=3)
    header = parse_header(b"xx" + bytes(buf), 2)
    assert header.base_offset == 7 and header.batch_length == len(buf) - 12
    assert header.partition_leader_epoch == -1 and header.magic == 2
    assert header.crc == crc32c.crc32c(bytes(buf[21:]))
    assert header.attributes == 0 and header.timestamp_type == 0
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (1, 2, 3)


# --- corruption and invalid batches ----------------------------------------


@pytest.mark.parametrize("codec", [0, 4])
def test_any_flipped_byte_inside_crc_is_corrupt(codec):
    raw = build_batch(SAMPLE[:3], compression=codec)
    for pos in range(17, len(raw)):  # the CRC itself, then everything it covers
        damaged = bytearray(raw)
        damaged[pos] ^= 0x40
        with pytest.raises(CorruptRecordError, match="CRC"):
            split_batches(damaged)


def test_crc_error_names_both_values():
    damaged = bytearray(build_batch(SAMPLE[:1]))
    damaged[-1] ^= 1
    expected = parse_header(damaged).crc
    with pytest.raises(CorruptRecordError) as info:
        split_batches(damaged)
    assert f"{expected:#010x}" in str(info.value)
    assert f"{crc32c.crc32c(bytes(damaged[21:])):#010x}" in str(info.value)


def test_bytes_outside_crc_are_free():
    raw = bytearray(build_batch(SAMPLE[:2]))
    raw[12:16] = struct.pack(">i", 17)  # partitionLeaderEpoch, like baseOffset, lies outside the CRC
    [(header, _)] = split_batches(raw)
    assert header.partition_leader_epoch == 17


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
def test_truncation_at_every_length(codec):
    raw = bytes(build_batch(SAMPLE[:3], compression=codec))
    for n in range(1, len(raw)):
        with pytest.raises(RECORD_ERRORS):
            split_batches(raw[:n])
        with pytest.raises(RECORD_ERRORS):
            decode_records(raw[:n])
    prefix = bytes(build_batch(SAMPLE[:1]))
    for n in range(1, len(raw)):
        with pytest.raises(RECORD_ERRORS):
            split_batches(prefix + raw[:n])


def test_legacy_magic_is_invalid():
    for magic in (0, 1):
        legacy = LegacyRecordBatchBuilder(magic=magic, compression_type=0, batch_size=1 << 20)
        legacy.append(0, timestamp=1, key=b"k", value=b"v" * 80)
        with pytest.raises(InvalidRecordError, match="magic"):
            split_batches(bytes(legacy.build()))
    with pytest.raises(InvalidRecordError, match="magic"):
        decode_records(patch(build_batch(SAMPLE[:1]), ">b", 16, 1))


def control_batch() -> bytearray:
    buf = bytearray(build_batch([Record(0, 5, b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00", [])]))
    return patch(buf, ">h", 21, 0x30)  # transactional + control


def test_control_batch_from_client_is_invalid():
    with pytest.raises(InvalidRecordError, match="control"):
        split_batches(control_batch())
    [(header, view)] = split_batches(control_batch(), allow_control=True)
    assert header.is_control and header.is_transactional
    assert len(decode_records(view)) == 1


@pytest.mark.parametrize(
    "fmt, pos, value, error",
    [
        (">i", 57, 5, InvalidRecordError),  # recordsCount != lastOffsetDelta + 1
        (">i", 23, 1, InvalidRecordError),  # lastOffsetDelta
        (">i", 57, 0, InvalidRecordError),  # no records
        (">i", 57, -1, InvalidRecordError),
        (">h", 21, 5, CorruptRecordError),  # compression codec 5 does not exist
        (">h", 21, 7, CorruptRecordError),
    ],
)
def test_inconsistent_headers(fmt, pos, value, error):
    with pytest.raises(error):
        split_batches(patch(build_batch(SAMPLE[:3]), fmt, pos, value))


def test_decode_count_mismatch():
    """decode_records trusts no earlier check: a wrong recordsCount never passes."""
    buf = build_batch(SAMPLE[:3])
    with pytest.raises(RECORD_ERRORS):
        decode_records(patch(buf, ">i", 57, 2))
    with pytest.raises(RECORD_ERRORS):
        decode_records(patch(buf, ">i", 57, 4))
    with pytest.raises(CorruptRecordError):
        decode_records(bytes(buf) + b"\x00")  # more bytes than batchLength


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_undecodable_compressed_payload_is_corrupt(codec):
    buf = recompress(build_batch(SAMPLE[:2]), codec, b"\x00this is not compressed\xff" * 3)
    [(_, view)] = split_batches(buf)  # the CRC is right: the client compressed garbage
    with pytest.raises(CorruptRecordError) as info:
        decode_records(view)
    assert info.value.__cause__ is not None


def test_non_utf8_header_key_is_invalid():
    buf = bytearray(build_batch([Record(0, 1, b"k", b"v", [("hk", b"hv")])]))
    pos = buf.index(b"hk")
    buf[pos : pos + 2] = b"\xff\xfe"
    [(_, view)] = split_batches(reseal(buf))
    with pytest.raises(InvalidRecordError) as info:
        decode_records(view)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_module_stays_sans_io():
    tree = ast.parse(Path(rec.__file__).read_text())
    imported = {n.name for node in ast.walk(tree) if isinstance(node, ast.Import) for n in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in imported if m.split(".")[0] in {"asyncio", "socket", "pulsar", "logging", "kop"}}


# --- properties ------------------------------------------------------------

header_st = st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=16))
record_fields_st = st.tuples(
    st.integers(min_value=0, max_value=1 << 45),
    st.none() | st.binary(max_size=40),
    st.none() | st.binary(max_size=200),
    st.lists(header_st, max_size=4),
)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.lists(record_fields_st, min_size=1, max_size=20),
    codec=st.sampled_from(list(CODECS.values())),
    base_offset=st.integers(min_value=0, max_value=(1 << 62)),
)
def test_round_trip_property(fields, codec, base_offset):
    records = [Record(i, ts, key, value, headers) for i, (ts, key, value, headers) in enumerate(fields)]
    buf = build_batch(records, base_offset=base_offset, compression=codec)
    [(header, view)] = split_batches(buf)
    assert (header.base_offset, header.records_count, header.compression) == (base_offset, len(records), codec)
    assert decode_records(view) == records
    assert kafka_python_read(buf) == as_tuples(records, base_offset)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_record_errors(data):
    try:
        for _, view in split_batches(data):
            decode_records(view)
    except RECORD_ERRORS:
        pass


_SEEDS = [bytes(build_batch(SAMPLE[:4], compression=c)) for c in CODECS.values()]


@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(min_value=0, max_value=64),
)
def test_mutated_batches_with_valid_crc_only_raise_record_errors(seed, edits, cut):
    """Get past the CRC so the per-record codec sees damage, not just split_batches."""
    buf = bytearray(seed[: len(seed) - cut] if cut < len(seed) - BATCH_HEADER_SIZE else seed)
    for pos, value in edits:
        buf[pos % (len(buf) - 21) + 21] = value
    struct.pack_into(">i", buf, 8, len(buf) - 12)
    reseal(buf)
    try:
        for _, view in split_batches(buf, allow_control=True):
            decode_records(view)
    except RECORD_ERRORS:
        pass


@pytest.mark.parametrize("codec", [c for c in CODECS.values() if c], ids=[k for k, c in CODECS.items() if c])
def test_a_decompression_bomb_is_refused_before_it_inflates(codec):
    """A small compressed batch whose records inflate past MAX_INFLATED_BYTES: refused as too large (zstd,
    whose frame cannot say so before it overflows the buffer, as corrupt), never inflated whole."""
    import tracemalloc

    from kop.protocol.records import MAX_INFLATED_BYTES, BatchTooLargeError
    bomb = build_batch([Record(0, 1, None, bytes(8 * MAX_INFLATED_BYTES), [])], compression=codec)
    assert len(bomb) < 8 * MAX_INFLATED_BYTES // 16  # snappy packs zeros ~21x, the others far more
    tracemalloc.start()
    try:
        with pytest.raises((BatchTooLargeError, CorruptRecordError)) as caught:
            decode_records(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert codec == 4 or isinstance(caught.value, BatchTooLargeError), caught.value
    # a few times the limit at most (a buffer and its copy), never the 128 MiB it would inflate to
    assert peak < 3 * MAX_INFLATED_BYTES, f"{peak} bytes allocated to refuse it"


@pytest.mark.parametrize("codec", [c for c in CODECS.values() if c], ids=[k for k, c in CODECS.items() if c])
def test_a_batch_just_under_the_inflate_limit_decodes(codec):
    from kop.protocol.records import MAX_INFLATED_BYTES
    value = bytes(range(256)) * ((MAX_INFLATED_BYTES - 4096) // 256)
    got = decode_records(build_batch([Record(0, 1, b"k", value, [])], compression=codec))
    assert len(got) == 1 and got[0].value == value and got[0].key == b"k"
