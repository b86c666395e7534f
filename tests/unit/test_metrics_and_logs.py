"""kop/metrics.py helpers and kop/logs.py formatting, without a server."""

from __future__ import annotations

import contextvars
import json
import logging

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.protocol.consumer import OffsetCommitResponse

from kop import logs, metrics
from kop.protocol.fetch_response import FetchableTopicResponse, FetchResponseData, PartitionData
from kop.protocol.produce_response import PartitionProduceResponse, ProduceResponseData, TopicProduceResponse


def test_error_codes_are_found_in_kop_answers_and_kafka_protocol_ones():
    produce = ProduceResponseData([TopicProduceResponse("t", [PartitionProduceResponse(0, 0, 5),
                                                              PartitionProduceResponse(1, 6, -1)])])
    assert metrics.error_codes(produce) == [6]
    fetch = FetchResponseData(0, 0, 0, [FetchableTopicResponse("t", [
        PartitionData(0, 0, 10, 10, records=[b"\x00" * 80]), PartitionData(1, 1, -1, -1)])])
    assert metrics.error_codes(fetch) == [1]
    commit = OffsetCommitResponse(version=8, throttle_time_ms=0, topics=[OffsetCommitResponse.OffsetCommitResponseTopic(
        version=8, name="t", partitions=[
            OffsetCommitResponse.OffsetCommitResponseTopic.OffsetCommitResponsePartition(
                version=8, partition_index=0, error_code=25),
            OffsetCommitResponse.OffsetCommitResponseTopic.OffsetCommitResponsePartition(
                version=8, partition_index=1, error_code=0)])])
    assert metrics.error_codes(commit) == [25]


def test_a_request_counts_once_under_its_first_error_and_each_error_separately():
    before_req = metrics.REQUESTS.labels("Produce", "7", "NOT_LEADER_OR_FOLLOWER")._value.get()
    before_err = metrics.RESPONSE_ERRORS.labels("Produce", "NOT_LEADER_OR_FOLLOWER")._value.get()
    answer = ProduceResponseData([TopicProduceResponse("t", [PartitionProduceResponse(i, 6, -1) for i in range(3)])])
    metrics.observe_request(0, 7, answer, 0.004)
    metrics.DEFERRED.flush()  # what a scrape does first (metrics.Deferred)
    assert metrics.REQUESTS.labels("Produce", "7", "NOT_LEADER_OR_FOLLOWER")._value.get() == before_req + 1
    assert metrics.RESPONSE_ERRORS.labels("Produce", "NOT_LEADER_OR_FOLLOWER")._value.get() == before_err + 3


def test_label_values_are_capped():
    cap = metrics.LabelCap(2)
    assert [cap(v) for v in ("a", "b", "c", "a", "d")] == ["a", "b", metrics.OTHER, "a", metrics.OTHER]


def _record(message: str = "hello") -> logging.LogRecord:
    return logging.LogRecord("kop.test", logging.WARNING, __file__, 1, message, (), None)


def _formatted(formatter: logging.Formatter, info: logs.ConnectionInfo | None) -> str:
    handler_filter = logs._ContextFilter()
    context = contextvars.copy_context()

    def inside() -> str:
        logs.CONNECTION.set(info)
        record = _record()
        handler_filter.filter(record)
        return formatter.format(record)
    return context.run(inside)


def test_text_lines_carry_the_connection_when_there_is_one():
    line = _formatted(logs.TextFormatter(), logs.ConnectionInfo("10.0.0.7:5555", "app-1", "acme"))
    assert line.endswith("WARNING kop.test: hello [client=10.0.0.7:5555 client_id=app-1 principal=acme]")
    assert _formatted(logs.TextFormatter(), None).endswith("WARNING kop.test: hello")


def test_json_lines_are_objects_with_the_connection_fields():
    obj = json.loads(_formatted(logs.JsonFormatter(), logs.ConnectionInfo("10.0.0.7:5555", "app-1")))
    assert obj["level"] == "WARNING" and obj["logger"] == "kop.test" and obj["message"] == "hello"
    assert obj["client"] == "10.0.0.7:5555" and obj["client_id"] == "app-1" and "principal" not in obj
    assert obj["time"].endswith("Z")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=40),
       st.lists(st.integers(0, 10**6), max_size=20))
def test_deferred_counts_show_exactly_what_direct_ones_would(values, amounts):
    """The hot path's deferred increments and observations (metrics.Deferred) give the samples a
    direct prometheus_client increment or observation gives, once the registry is read."""
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from kop.metrics import Deferred
    samples = []
    for deferred_mode in (False, True):
        registry = CollectorRegistry()
        deferred = Deferred()
        if deferred_mode:
            registry.register(deferred)
        h = Histogram("h", "h", ["api"], buckets=(0.001, 0.01, 1.0, 50.0), registry=registry).labels("x")
        c = Counter("c", "c", registry=registry)
        for v in values:
            deferred.observe(h, v) if deferred_mode else h.observe(v)
        for a in amounts:
            deferred.inc(c, a) if deferred_mode else c.inc(a)
        samples.append(sorted((s.name, tuple(sorted(s.labels.items())), round(s.value, 6))
                              for family in registry.collect() for s in family.samples))
    assert samples[0] == samples[1]
