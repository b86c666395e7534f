"""The hand-written hot-path codecs against kafka.protocol's generated ones, for every version served:
Produce requests decoded by hand (records as views of the frame), Produce responses and Fetch
responses encoded by hand (a Fetch response's records as the reader's chunks)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.protocol.consumer import FetchResponse
from kafka.protocol.producer import ProduceRequest

from kop.protocol import produce_request
from kop.protocol.errors import ProtocolViolation
from kop.protocol.fetch_response import FetchableTopicResponse, FetchResponseData, PartitionData

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
blobs = st.binary(max_size=64)
topics = st.lists(st.tuples(names, st.lists(st.tuples(st.integers(0, 2**31 - 1), st.none() | blobs), max_size=4)),
                  max_size=4)


def _produce_body(version: int, txn, acks: int, timeout: int, data) -> bytes:
    cls = ProduceRequest.TopicProduceData
    return bytes(ProduceRequest(transactional_id=txn, acks=acks, timeout_ms=timeout, topic_data=[
        cls(name=n, partition_data=[cls.PartitionProduceData(index=i, records=r) for i, r in parts])
        for n, parts in data]).encode(version=version))


@settings(max_examples=60, deadline=None)
@given(version=st.integers(3, 12), txn=st.none() | names, acks=st.sampled_from([-1, 0, 1]),
       timeout=st.integers(0, 2**31 - 1), data=topics, prefix=st.binary(max_size=5))
def test_produce_decode_matches_kafka_python(version, txn, acks, timeout, data, prefix):
    body = _produce_body(version, txn, acks, timeout, data)
    frame = prefix + body
    request, end = produce_request.decode(version, memoryview(frame), len(prefix))
    assert end == len(frame)
    assert (request.transactional_id, request.acks, request.timeout_ms) == (txn, acks, timeout)
    got = [(t.name, [(p.index, None if p.records is None else bytes(p.records)) for p in t.partition_data])
           for t in request.topic_data]
    assert got == [(n, list(parts)) for n, parts in data]


def test_produce_records_are_views_of_the_frame_not_copies():
    frame = _produce_body(9, None, -1, 1000, [("t", [(0, b"x" * 100)])])
    view = memoryview(frame)
    request, _ = produce_request.decode(9, view, 0)
    records = request.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and records.obj is frame


@pytest.mark.parametrize("version", range(3, 13))
def test_produce_every_truncation_is_a_protocol_violation(version):
    body = _produce_body(version, "tx", -1, 5, [("orders", [(0, b"abc"), (1, None)]), ("b", [])])
    for cut in range(len(body)):
        with pytest.raises(ProtocolViolation):
            produce_request.decode(version, memoryview(body[:cut]), 0)


def test_produce_flexible_tagged_fields_are_skipped():
    # v9, hand-built: null transactional id, acks -1, timeout 7, one topic "t" with one partition,
    # each struct carrying one unknown tagged field.
    tag = b"\x01\x05\x02zz"  # one field: tag 5, 2 bytes
    body = (b"\x00" + b"\xff\xff" + b"\x00\x00\x00\x07" + b"\x02" + b"\x02t" + b"\x02" + b"\x00\x00\x00\x03"
            + b"\x04abc" + tag + tag + tag)
    request, end = produce_request.decode(9, memoryview(body), 0)
    assert end == len(body)
    assert request.topic_data[0].name == "t"
    assert bytes(request.topic_data[0].partition_data[0].records) == b"abc"


@pytest.mark.parametrize("body", [b"\x00\x00", b"\xff\xfe" + b"\x00" * 20, b"\x00\x00\x00\x01\x00\x00\x00\x00\x7f\xff\xff\xff"])
def test_produce_bad_lengths_are_protocol_violations(body):
    with pytest.raises(ProtocolViolation):
        produce_request.decode(3, memoryview(body), 0)


fetch_parts = st.lists(st.tuples(st.integers(0, 1000), st.sampled_from([0, 1, 3, 6]), st.integers(-1, 2**40),
                                 st.lists(blobs, max_size=3),
                                 st.lists(st.tuples(st.integers(0, 2**62), st.integers(0, 2**40)), max_size=3)),
                       max_size=4)


@settings(max_examples=60, deadline=None)
@given(version=st.integers(4, 12), throttle=st.integers(0, 1000), error=st.sampled_from([0, 7]),
       data=st.lists(st.tuples(names, fetch_parts), max_size=3))
def test_fetch_encode_matches_kafka_python(version, throttle, error, data):
    """Including read_committed answers' aborted transactions."""
    ours = FetchResponseData(throttle, error, 0, [FetchableTopicResponse(name, [
        PartitionData(i, e, hw, hw, records=chunks, aborted_transactions=aborted) for i, e, hw, chunks, aborted in parts])
        for name, parts in data])
    cls = FetchResponse.FetchableTopicResponse
    theirs = FetchResponse(throttle_time_ms=throttle, error_code=error, session_id=0, responses=[cls(
        topic=name, partitions=[cls.PartitionData(
            partition_index=i, error_code=e, high_watermark=hw, last_stable_offset=hw, log_start_offset=-1,
            aborted_transactions=[cls.PartitionData.AbortedTransaction(producer_id=pid, first_offset=first)
                                  for pid, first in aborted],
            preferred_read_replica=-1, records=b"".join(chunks))
            for i, e, hw, chunks, aborted in parts]) for name, parts in data])
    theirs._header = None
    assert b"".join(ours.encode_chunks(version)) == bytes(theirs.encode(version=version))
    decoded = FetchResponse.decode(b"".join(ours.encode_chunks(version)), version=version)
    assert [t.topic for t in decoded.responses] == [n for n, _ in data]


def test_fetch_records_chunks_are_passed_through_not_copied():
    stored = b"\x00" * 8 + b"batch bytes"
    chunk = memoryview(stored)[8:]
    ours = FetchResponseData(0, 0, 0, [FetchableTopicResponse("t", [PartitionData(0, 0, 5, 5, records=[
        (42).to_bytes(8, "big"), chunk])])])
    assert any(c is chunk for c in ours.encode_chunks(12))


int64s = st.integers(-2**63, 2**63 - 1)
produce_partitions = st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(-1, 120), int64s, int64s, int64s,
                                        st.none() | names,
                                        st.lists(st.tuples(st.integers(0, 2**31 - 1), st.none() | names), max_size=2)),
                              max_size=3)


@settings(max_examples=80, deadline=None)
@given(version=st.integers(3, 12), throttle=st.integers(0, 2**31 - 1),
       data=st.lists(st.tuples(names, produce_partitions), max_size=3))
def test_produce_response_encode_matches_kafka_python(version, throttle, data):
    from kafka.protocol.producer import ProduceResponse

    from kop.protocol.produce_response import PartitionProduceResponse, ProduceResponseData, TopicProduceResponse
    ours = ProduceResponseData([TopicProduceResponse(name, [
        PartitionProduceResponse(i, e, base, append, start, message, errors)
        for i, e, base, append, start, message, errors in parts]) for name, parts in data], throttle)
    cls = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
    theirs = ProduceResponse(throttle_time_ms=throttle, responses=[ProduceResponse.TopicProduceResponse(
        name=name, partition_responses=[cls(
            index=i, error_code=e, base_offset=base, log_append_time_ms=append, log_start_offset=start,
            error_message=message, record_errors=[cls.BatchIndexAndErrorMessage(
                batch_index=b, batch_index_error_message=m) for b, m in errors])
            for i, e, base, append, start, message, errors in parts]) for name, parts in data])
    assert ours.encode(version) == bytes(theirs.encode(version=version))
