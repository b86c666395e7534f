"""Bad input: the offending connection is closed with a log line (protocol violations) or the
request gets a Kafka error code (bad data); the server keeps serving everyone else, and nothing
acknowledged before is lost."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse, MetadataRequest
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from kop.protocol.records import Record, build_batch
from support import RawClient, closed_by_server, raw_request, read_frame, unique

pytestmark = pytest.mark.pulsar


def _still_serves(bootstrap: str) -> None:
    with RawClient(bootstrap) as client:
        resp = client.call(ApiVersionsRequest(), 3, ApiVersionsResponse)
        assert resp.error_code == 0 and resp.api_keys


def _produce_request(topic: str, partition: int, records: bytes, acks: int = -1) -> ProduceRequest:
    return ProduceRequest(acks=acks, timeout_ms=30_000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
            index=partition, records=records)])])


def _error_code(resp) -> int:
    return resp.responses[0].partition_responses[0].error_code


@pytest.fixture
def served_topic(gateways):
    """A gateway, and a topic holding 20 acknowledged records that must survive the abuse."""
    gw = gateways("--entry-format", "pulsar")
    topic = unique("bad")
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap, acks="all")
    for i in range(20):
        producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0).get(30)
    producer.close()
    return gw, topic


def _all_records_there(gw, topic: str) -> None:
    consumer = KafkaConsumer(bootstrap_servers=gw.bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    values = []
    for m in consumer:
        values.append(m.value)
        if len(values) == 20:
            break
    consumer.close()
    assert values == [b"v%d" % i for i in range(20)]


@pytest.mark.parametrize("case", ["oversized", "negative", "truncated", "garbage", "unknown_api",
                                  "unserved_version", "short_header", "undecodable_body"])
def test_protocol_violations_close_only_that_connection(served_topic, case):
    gw, topic = served_topic
    bystander = RawClient(gw.bootstrap)  # an innocent connection open throughout
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    if case == "oversized":
        sock.sendall(struct.pack(">i", 200 * 1024 * 1024))  # beyond the 100 MiB limit: refused at once
    elif case == "negative":
        sock.sendall(struct.pack(">i", -5))
    elif case == "truncated":  # a Metadata v12 request cut short inside its body
        frame = raw_request(3, 12, b"\x02\x05abcdefgh", flexible=True)
        sock.sendall(frame)
    elif case == "garbage":
        sock.sendall(struct.pack(">i", 64) + bytes(range(64)))
    elif case == "unknown_api":
        sock.sendall(raw_request(9999, 0, b""))
    elif case == "unserved_version":
        sock.sendall(raw_request(3, 99, b""))
    elif case == "short_header":
        sock.sendall(struct.pack(">i", 3) + b"\x00\x03\x00")
    elif case == "undecodable_body":
        sock.sendall(raw_request(0, 9, b"\xff" * 40, flexible=True))
    assert closed_by_server(sock), f"{case}: the gateway kept the connection open"
    sock.close()
    # The bystander and new clients are still served; nothing acknowledged was lost.
    assert bystander.call(ApiVersionsRequest(), 3, ApiVersionsResponse).error_code == 0
    bystander.close()
    _still_serves(gw.bootstrap)
    _all_records_there(gw, topic)
    time.sleep(0.2)
    assert "closing connection from" in gw.log(), "no log line says why the connection was closed"
    assert gw.alive()


def test_api_versions_too_new_gets_kip511_fallback(served_topic):
    gw, _ = served_topic
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    sock.sendall(raw_request(18, 127, b"\x00\x00\x00", correlation_id=42, flexible=True))
    frame = read_frame(sock)
    assert frame is not None
    correlation, error = struct.unpack_from(">ih", frame, 0)
    assert correlation == 42 and error == 35  # UNSUPPORTED_VERSION, v0 body
    resp = ApiVersionsResponse.decode(frame[4:], version=0)
    assert {k.api_key for k in resp.api_keys} >= {0, 1, 2, 3, 18}
    sock.close()


def test_bad_crc_gets_corrupt_message(served_topic):
    gw, topic = served_topic
    batch = build_batch([Record(0, int(time.time() * 1000), b"k", b"v", [])])
    batch[-1] ^= 0xFF  # flip a bit inside the CRC-covered part
    with RawClient(gw.bootstrap) as client:
        resp = client.call(_produce_request(topic, 0, bytes(batch)), 9, ProduceResponse)
    assert _error_code(resp) == 2  # CORRUPT_MESSAGE
    _all_records_there(gw, topic)


def test_message_format_v1_gets_invalid_record(served_topic):
    gw, topic = served_topic
    batch = build_batch([Record(0, int(time.time() * 1000), b"k", b"v", [])])
    batch[16] = 1  # magic 1
    with RawClient(gw.bootstrap) as client:
        resp = client.call(_produce_request(topic, 0, bytes(batch)), 9, ProduceResponse)
    assert _error_code(resp) in (2, 87)  # CORRUPT_MESSAGE or INVALID_RECORD, never a write
    _all_records_there(gw, topic)


def test_unknown_partition_and_bad_acks(served_topic):
    gw, topic = served_topic
    batch = bytes(build_batch([Record(0, int(time.time() * 1000), b"k", b"v", [])]))
    with RawClient(gw.bootstrap) as client:
        assert _error_code(client.call(_produce_request(topic, 7, batch), 9, ProduceResponse)) == 3
        assert _error_code(client.call(_produce_request(topic, 0, batch, acks=2), 9, ProduceResponse)) == 21


def test_produce_to_missing_topic_without_auto_creation(gateways):
    gw = gateways(env={"KOP_TOPICS_AUTO_CREATE": "false"})
    topic = unique("nocreate")
    with RawClient(gw.bootstrap) as client:
        from kafka.protocol.metadata import MetadataResponse
        meta = client.call(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                                           allow_auto_topic_creation=True), 12, MetadataResponse)
        assert meta.topics[0].error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION: not created
        batch = bytes(build_batch([Record(0, int(time.time() * 1000), b"k", b"v", [])]))
        assert _error_code(client.call(_produce_request(topic, 0, batch), 9, ProduceResponse)) == 3
    from support import admin
    status, _ = admin(f"persistent/public/default/{topic}/partitions")
    assert status == 404, "the topic was created although auto-creation is off"
