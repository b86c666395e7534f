"""kop.backend.convert: Kafka record <-> Pulsar message fields, losslessly, and native Pulsar messages."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kop.backend import convert
from kop.backend.convert import (HEADERS, KEY_B64, PREFIX, TIMESTAMP, PulsarFields, kafka_entry_properties,
                                 pulsar_to_record, record_to_pulsar)
from kop.protocol.records import Record

ROOT = Path(__file__).resolve().parents[2]
PUBLISH_TS = 1_650_000_000_123


def through_pulsar(fields: PulsarFields, offset_delta: int = 0, publish_timestamp: int = PUBLISH_TS) -> Record:
    """What a Kafka consumer gets back: Pulsar shows a missing partition key as ""."""
    return pulsar_to_record(offset_delta, fields.payload, fields.null_value, fields.partition_key or "",
                            fields.event_timestamp, publish_timestamp, dict(fields.properties))


def round_trip(record: Record) -> Record:
    return through_pulsar(record_to_pulsar(record), record.offset_delta)


# --- strategies --------------------------------------------------------------------------------------------

utf8_text = st.text(max_size=20)
keys = st.one_of(
    st.none(),
    st.just(b""),
    utf8_text.map(str.encode),
    st.binary(max_size=20),
    st.sampled_from([b"\xff", b"\xc3", b"\x00", b"a\x80b", "é".encode("latin-1")]),
)
values = st.one_of(st.none(), st.just(b""), st.binary(max_size=50), utf8_text.map(str.encode))
timestamps = st.one_of(st.sampled_from([-1, 0, 1, 1_700_000_000_000]), st.integers(-(2**63), 2**63 - 1))
header_names = st.one_of(
    st.sampled_from(["a", "b", "content-type", "", "__kafka_headers", "__kafka_ts", "__kafka_key_b64",
                     "__kafka_x", "__kafka_"]),
    utf8_text,
    utf8_text.map(lambda s: PREFIX + s),
)
header_values = st.one_of(st.none(), st.just(b""), st.binary(max_size=20), utf8_text.map(str.encode))
headers = st.lists(st.tuples(header_names, header_values), max_size=6)
records = st.builds(Record, offset_delta=st.integers(0, 16_383), timestamp=timestamps, key=keys, value=values,
                    headers=headers)


@settings(max_examples=500, deadline=None)
@given(records)
def test_round_trip_is_lossless(record):
    fields = record_to_pulsar(record)
    assert isinstance(fields.payload, bytes)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.properties.items())
    assert fields.event_timestamp >= 0
    back = through_pulsar(fields, record.offset_delta)
    assert back == record


@settings(max_examples=200, deadline=None)
@given(records, st.integers(0, 2**62))
def test_round_trip_independent_of_publish_time(record, publish):
    fields = record_to_pulsar(record)
    assert through_pulsar(fields, record.offset_delta, publish) == record


# --- individual fields ---------------------------------------------------------------------------------------

def test_utf8_key_is_the_partition_key():
    fields = record_to_pulsar(Record(0, 5, "clé-1".encode(), b"v", []))
    assert fields.partition_key == "clé-1"
    assert KEY_B64 not in fields.properties


def test_null_key_is_no_partition_key():
    fields = record_to_pulsar(Record(0, 5, None, b"v", []))
    assert fields.partition_key is None
    assert KEY_B64 not in fields.properties
    assert round_trip(Record(0, 5, None, b"v", [])).key is None


@pytest.mark.parametrize("key", [b"", b"\xff\xfe", b"\x80", b"ok\xc3"])
def test_binary_or_empty_key_is_base64(key):
    fields = record_to_pulsar(Record(0, 5, key, b"v", []))
    assert fields.properties[KEY_B64] == "1"
    assert base64.b64decode(fields.partition_key) == key
    assert round_trip(Record(0, 5, key, b"v", [])).key == key


def test_null_value_is_pulsar_null_value():
    fields = record_to_pulsar(Record(0, 5, b"k", None, []))
    assert fields.payload == b""
    assert fields.null_value is True
    assert round_trip(Record(0, 5, b"k", None, [])).value is None


def test_empty_value_is_not_null():
    fields = record_to_pulsar(Record(0, 5, b"k", b"", []))
    assert fields.payload == b"" and fields.null_value is False
    assert round_trip(Record(0, 5, b"k", b"", [])).value == b""


def test_positive_timestamp_is_event_time():
    fields = record_to_pulsar(Record(0, 1_700_000_000_000, None, b"v", []))
    assert fields.event_timestamp == 1_700_000_000_000
    assert TIMESTAMP not in fields.properties


@pytest.mark.parametrize("ts", [-1, 0, -5, -(2**63)])
def test_unset_timestamp_kept_in_property(ts):
    fields = record_to_pulsar(Record(0, ts, None, b"v", []))
    assert fields.event_timestamp == 0  # Pulsar's "unset"
    assert fields.properties[TIMESTAMP] == str(ts)
    assert round_trip(Record(0, ts, None, b"v", [])).timestamp == ts


def test_plain_headers_are_properties_only():
    hdrs = [("a", b"1"), ("b", "ü".encode()), ("c", b"")]
    fields = record_to_pulsar(Record(0, 5, b"k", b"v", hdrs))
    assert fields.properties == {"a": "1", "b": "ü", "c": ""}
    assert HEADERS not in fields.properties
    assert round_trip(Record(0, 5, b"k", b"v", hdrs)).headers == hdrs


def test_no_headers_no_properties():
    fields = record_to_pulsar(Record(0, 5, b"k", b"v", []))
    assert fields.properties == {}


@pytest.mark.parametrize("hdrs, why", [
    ([("b", b"1"), ("a", b"2")], "not sorted"),
    ([("a", b"1"), ("a", b"2")], "repeated name"),
    ([("a", b"\xff")], "binary value"),
    ([("a", None)], "null value"),
    ([("__kafka_x", b"1")], "reserved prefix"),
    ([("__kafka_headers", b"[]")], "reserved name"),
    ([("a", b"1"), ("a", b"1")], "exact duplicate"),
])
def test_exact_header_list_kept_when_properties_cannot(hdrs, why):
    record = Record(0, 5, b"k", b"v", hdrs)
    fields = record_to_pulsar(record)
    assert HEADERS in fields.properties, why
    stored = json.loads(fields.properties[HEADERS])
    assert [(n, None if v is None else base64.b64decode(v)) for n, v in stored] == hdrs
    # the readable copy never carries reserved names or null values
    for name, value in fields.properties.items():
        if name.startswith(PREFIX):
            assert name in (HEADERS, KEY_B64, TIMESTAMP)
    assert round_trip(record).headers == hdrs


def test_readable_copy_for_pulsar_consumers():
    hdrs = [("z", b"last"), ("a", b"first"), ("bin", b"\xff"), ("n", None)]
    fields = record_to_pulsar(Record(0, 5, None, b"v", hdrs))
    assert fields.properties["z"] == "last"
    assert fields.properties["a"] == "first"
    assert fields.properties["bin"] == "\ufffd"  # best effort, the exact bytes are in __kafka_headers
    assert "n" not in fields.properties


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(utf8_text.filter(lambda s: not s.startswith(PREFIX)), utf8_text, max_size=6))
def test_plain_mapping_used_for_unique_sorted_utf8_headers(props):
    hdrs = [(name, value.encode()) for name, value in sorted(props.items())]
    fields = record_to_pulsar(Record(0, 1, b"k", b"v", hdrs))
    assert HEADERS not in fields.properties
    assert fields.properties == props
    assert round_trip(Record(0, 1, b"k", b"v", hdrs)).headers == hdrs


# --- native Pulsar messages --------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.dictionaries(utf8_text.filter(lambda s: not s.startswith(PREFIX)), utf8_text, max_size=6),
       st.text(max_size=10), st.binary(max_size=30), st.booleans(), st.integers(0, 2**50), st.integers(1, 2**50))
def test_native_pulsar_message(props, partition_key, payload, null_value, event_time, publish_time):
    record = pulsar_to_record(3, payload, null_value, partition_key, event_time, publish_time, props)
    assert record.offset_delta == 3
    assert record.headers == [(n, v.encode()) for n, v in sorted(props.items())]
    assert [n for n, _ in record.headers] == sorted(props)
    assert record.key == (partition_key.encode() if partition_key else None)
    assert record.value == (None if null_value else payload)
    assert record.timestamp == (event_time if event_time > 0 else publish_time)


def test_native_message_timestamps():
    assert pulsar_to_record(0, b"", False, "", 0, 1234, {}).timestamp == 1234
    assert pulsar_to_record(0, b"", False, "", 99, 1234, {}).timestamp == 99


def test_native_message_headers_sorted_and_reserved_hidden():
    record = pulsar_to_record(0, b"p", False, "k", 1, 2, {"z": "1", "a": "2", "__kafka_other": "x", "m": "é"})
    assert record.headers == [("a", b"2"), ("m", "é".encode()), ("z", b"1")]
    assert record.key == b"k"


def test_kafka_entry_properties():
    assert kafka_entry_properties(7) == {convert.ENTRY: convert.ENTRY_BATCH_V2, convert.RECORDS: "7"}
    assert convert.ENTRY == "__kafka_entry" and convert.ENTRY_BATCH_V2 == "batch-v2"
    assert convert.RECORDS == "__kafka_records"


def test_convert_imports_no_pulsar():
    code = ("import sys, kop.backend.convert\n"
            "bad = [m for m in ('pulsar', '_pulsar', 'httpx') if m in sys.modules]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
