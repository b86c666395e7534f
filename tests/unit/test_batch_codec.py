"""kop.backend.batch_codec: the compiled codec (kop/_batch_codec.c) against the pure-Python reference.

Property tests on random batches (keys, null values, headers, timestamps, every compression codec):
wherever the compiled codec answers, its bytes equal the Python path's, in both directions; where it
declines (None), the Python path still converts. Round trips keep every record's meaning, and the
common record (what clients send every day) is covered by the compiled path, not declined.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kop.backend import batch_codec as bc
from kop.backend.wire import commands as cmd
from kop.backend.wire.entries import decompress, split
from kop.protocol.records import Record, build_batch, decode_records, parse_header

native = pytest.mark.skipif(bc._native is None, reason="the compiled codec is not built (no C compiler?)")

CODECS = [0, 1, 2, 3, 4]  # none, gzip, snappy, lz4, zstd

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_keys = st.one_of(st.none(), st.just(b""), st.binary(max_size=12), _text.map(str.encode))
_values = st.one_of(st.none(), st.binary(max_size=64))
_header_names = st.one_of(_text, st.just("__kafka_ts"), st.just("__kafka_x"))
_header_values = st.one_of(st.none(), st.binary(max_size=8), _text.map(str.encode))
_headers = st.lists(st.tuples(_header_names, _header_values), max_size=4)
_plain_headers = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=6), _text.map(str.encode),
                                 max_size=4).map(lambda d: sorted(d.items()))
_timestamps = st.one_of(st.integers(1, 2**41), st.sampled_from([-1, 0]))


@st.composite
def batches(draw, plain: bool = False):
    count = draw(st.integers(1, 20))
    base = draw(st.integers(1, 2**41)) if plain else draw(_timestamps)
    records = []
    for i in range(count):
        if plain:
            key = draw(st.one_of(st.none(), st.text("xyz0123", min_size=1, max_size=8).map(str.encode)))
            ts, headers = base + i, draw(_plain_headers)
        else:
            key, ts, headers = draw(_keys), (base if i == 0 else draw(_timestamps)), draw(_headers)
            if records and records[0].timestamp == -1:
                ts = -1  # aiokafka cannot build an untimed first record before timed ones
        records.append(Record(i, ts, key, draw(_values), headers))
    codec = draw(st.sampled_from(CODECS))
    producer = draw(st.one_of(st.none(), st.tuples(st.integers(0, 2**40), st.integers(0, 100),
                                                    st.integers(0, 2**30))))
    kwargs = {}
    if producer is not None:
        kwargs = dict(producer_id=producer[0], producer_epoch=producer[1], base_sequence=producer[2])
    return bytes(build_batch(records, compression=codec, **kwargs))


def _entry(batch: bytes, implementation: str) -> bc.Entry:
    bc.use(implementation)
    try:
        return bc.entry_of(parse_header(batch), batch, "pulsar")
    finally:
        bc.use("native")


def _meta(entry: bc.Entry, publish_time: int = 1_800_000_000_000) -> dict:
    fields = cmd.MessageMetadata.decode(entry.metadata)
    fields["publish_time"] = publish_time
    return fields


@native
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(batches())
def test_produce_direction_native_equals_python(batch):
    header = parse_header(batch)
    python = _entry(batch, "python")
    records = bc._records_section(header, batch)
    tag = None
    if header.producer_id >= 0:
        tag = bc.producer_tag(header.producer_id, header.producer_epoch, header.base_sequence,
                              bc.last_sequence(header.base_sequence, header.records_count))
    fast = bc._native.kafka_to_pulsar(records, header.records_count, header.base_timestamp, tag)
    inflated = decompress(cmd.MessageMetadata.decode(python.metadata), python.payload, 1 << 26)
    if fast is not None:
        assert fast == inflated
    assert _entry(batch, "native").payload == python.payload


@native
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(batches(), st.integers(0, 30))
def test_fetch_direction_native_equals_python(batch, skip):
    entry = _entry(batch, "python")
    metadata = _meta(entry)
    payload = decompress(metadata, entry.payload, 1 << 26)
    skip = min(skip, entry.num_messages - 1)
    bc.use("python")
    try:
        python = bc.kafka_batch_of(metadata, payload, None, 1 << 30, skip)
    finally:
        bc.use("native")
    assert bc.kafka_batch_of(metadata, payload, None, 1 << 30, skip) == python


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(batches(), st.sampled_from(["native", "python"]))
def test_round_trip_keeps_every_record(batch, implementation):
    if implementation == "native" and bc._native is None:
        pytest.skip("the compiled codec is not built")
    original = decode_records(batch)
    entry = _entry(batch, implementation)
    metadata = _meta(entry)
    bc.use(implementation)
    try:
        back = bc.kafka_batch_of(metadata, decompress(metadata, entry.payload, 1 << 26), None, 0)
    finally:
        bc.use("native")
    header = parse_header(back)
    assert header.compression == parse_header(batch).compression, "the consumer gets the producer's codec"
    for before, after in zip(original, decode_records(back), strict=True):
        assert (after.key, after.value, after.timestamp, after.headers) == (
            before.key, before.value, before.timestamp, before.headers)


@native
@settings(max_examples=100, deadline=None)
@given(batches(plain=True))
def test_everyday_records_take_the_compiled_path(batch):
    header = parse_header(batch)
    records = bc._records_section(header, batch)
    assert bc._native.kafka_to_pulsar(records, header.records_count, header.base_timestamp, None) is not None
    entry = _entry(batch, "native")
    metadata = _meta(entry)
    payload = decompress(metadata, entry.payload, 1 << 26)
    assert bc._native.pulsar_to_kafka(payload, entry.num_messages, 0, metadata["publish_time"]) is not None


@native
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(-1, 50), st.integers(-1, 50))
def test_compiled_codec_declines_garbage_without_raising(data, count, skip):
    assert bc._native.kafka_to_pulsar(data, count, 1, None) in (None,) or isinstance(
        bc._native.kafka_to_pulsar(data, count, 1, None), bytes)
    result = bc._native.pulsar_to_kafka(data, count, skip, 1)
    assert result is None or isinstance(result, tuple)


def test_native_pulsar_batches_read_back():
    """A batch entry as a native Pulsar producer writes it (properties in any order, a binary key
    flagged base64, a null value) converts through the Python path with the mapping convert.py states."""
    import base64
    from kop.backend.wire.entries import encode_batch, key_values
    payload = encode_batch([
        ({"properties": key_values({"b": "2", "a": "1"}), "partition_key": "k", "event_time": 5}, b"v1"),
        ({"partition_key": base64.b64encode(b"\xff\x00").decode(), "partition_key_b64_encoded": True}, b""),
        ({"null_value": True}, b""),
    ])
    metadata = {"num_messages_in_batch": 3, "publish_time": 9}
    batch = bc.kafka_batch_of(metadata, payload, None, 100)
    assert parse_header(batch).base_offset == 100
    assert [(r.offset_delta, r.key, r.value, r.timestamp, r.headers) for r in decode_records(batch)] == [
        (0, b"k", b"v1", 5, [("a", b"1"), ("b", b"2")]),
        (1, b"\xff\x00", b"", 9, []),
        (2, None, None, 9, []),
    ]
    assert split(metadata, payload)[2].metadata == {"null_value": True, "payload_size": 0}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_keys, _values, _plain_headers), min_size=1, max_size=10), st.integers(1, 2**41),
       st.integers(0, 2**40))
def test_python_record_encoder_matches_aiokafkas(rows, first_ts, base_offset):
    """The Python path encodes records itself (aiokafka's builder cannot take every timestamp
    order); where aiokafka can, the bytes are the same."""
    records = [Record(i, first_ts + i, k, v, h) for i, (k, v, h) in enumerate(rows)]
    section, first, top = bc.encode_kafka_records(records)
    assert bc.batch_from_records(section, base_offset, len(records), first, top) == bytes(
        build_batch(records, base_offset=base_offset))


def test_an_untimed_record_ahead_of_timed_ones_reads_back():
    records = [Record(0, -1, None, b"a", []), Record(1, 1_700_000_000_000, None, b"b", [])]
    section, first, top = bc.encode_kafka_records(records)
    back = decode_records(bc.batch_from_records(section, 7, 2, first, top))
    assert [(r.timestamp, r.value) for r in back] == [(-1, b"a"), (1_700_000_000_000, b"b")]
