"""Connection behaviour: pipelined requests are answered in request order, even when an earlier
one (a long-polling Fetch) finishes later; Fetch honours partition_max_bytes and max_bytes but
always returns the first batch whole (KIP-74)."""

from __future__ import annotations

import struct
import time

import pytest
from kafka import KafkaProducer
from kafka.protocol.consumer import FetchRequest, FetchResponse
from kafka.protocol.metadata import ApiVersionsRequest, MetadataRequest

from kop.mapping import offsets
from kop.protocol.records import split_batches
from support import RawClient, read_frame, unique

pytestmark = pytest.mark.pulsar


def _fetch(topic: str, offset: int, partition_max_bytes: int, max_bytes: int, max_wait_ms: int = 0) -> FetchRequest:
    return FetchRequest(replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=1, max_bytes=max_bytes,
                        isolation_level=0, session_id=0, session_epoch=-1,
                        topics=[FetchRequest.FetchTopic(topic=topic, partitions=[FetchRequest.FetchTopic.FetchPartition(
                            partition=0, current_leader_epoch=-1, fetch_offset=offset, log_start_offset=-1,
                            partition_max_bytes=partition_max_bytes)])], forgotten_topics_data=[], rack_id="")


def test_pipelined_responses_keep_request_order(gateways):
    gw = gateways()
    topic = unique("pipe")
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap, acks="all")
    end = producer.send(topic, value=b"x", partition=0).get(30).offset + 1
    producer.close()
    with RawClient(gw.bootstrap) as client:
        # A Fetch that long-polls for 1.5 s at the end of the partition, then 30 quick requests.
        ids = [client.send(_fetch(topic, end, 1 << 20, 1 << 20, max_wait_ms=1500), 11)]
        for i in range(30):
            request = ApiVersionsRequest() if i % 2 else MetadataRequest(topics=[])
            ids.append(client.send(request, 3 if i % 2 else 9))
        started = time.monotonic()
        seen = []
        for _ in ids:
            frame = read_frame(client.sock, 15)
            assert frame is not None
            seen.append(struct.unpack_from(">i", frame)[0])
        assert seen == ids, "responses out of request order"
        assert time.monotonic() - started >= 1.2, "the long poll did not wait"


def test_fetch_size_limits(gateways):
    gw = gateways()
    topic = unique("sizes")
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap, acks="all", linger_ms=0)
    first = None
    for i in range(40):  # 40 batches of one 1 KiB record each
        md = producer.send(topic, value=bytes([i]) * 1024, partition=0).get(30)
        first = md.offset if first is None else first
    producer.close()

    def fetched(partition_max_bytes: int, max_bytes: int):
        with RawClient(gw.bootstrap) as client:
            resp = client.call(_fetch(topic, first, partition_max_bytes, max_bytes), 11, FetchResponse)
        part = resp.responses[0].partitions[0]
        assert part.error_code == 0
        return part.records or b"", split_batches(part.records or b"")

    raw, batches = fetched(4096, 1 << 20)
    assert 1 <= len(batches) <= 4 and len(raw) <= 4096 + 1200
    raw, batches = fetched(1 << 20, 3000)
    assert 1 <= len(batches) <= 3 and len(raw) <= 3000 + 1200
    raw, batches = fetched(1, 1)  # smaller than one batch: still exactly one whole batch (KIP-74)
    assert len(batches) == 1 and batches[0][0].base_offset == first
    raw, batches = fetched(1 << 20, 1 << 20)
    assert len(batches) == 40
    bases = [h.base_offset for h, _ in batches]
    assert bases == sorted(bases) and offsets.unpack(bases[0]).batch_index == 0


def test_acks_zero_is_written_and_not_answered(gateways):
    from kafka.protocol.metadata import ApiVersionsResponse
    from kafka.protocol.producer import ProduceRequest

    from kop.protocol.records import Record, build_batch
    gw = gateways()
    topic = unique("acks0")
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap, acks="all")
    producer.send(topic, value=b"first", partition=0).get(30)
    producer.close()
    batch = bytes(build_batch([Record(0, int(time.time() * 1000), b"k", b"fire-and-forget", [])]))
    request = ProduceRequest(acks=0, timeout_ms=30_000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=batch)])])
    with RawClient(gw.bootstrap) as client:
        produce_id = client.send(request, 9)
        versions_id = client.send(ApiVersionsRequest(), 3)
        frame = read_frame(client.sock, 15)
        assert frame is not None
        assert struct.unpack_from(">i", frame)[0] == versions_id != produce_id  # no answer to acks=0
        assert ApiVersionsResponse.decode(frame[4:], version=3).error_code == 0
    from kafka import KafkaConsumer, TopicPartition
    deadline = time.monotonic() + 15
    values: list[bytes] = []
    while time.monotonic() < deadline and b"fire-and-forget" not in values:
        consumer = KafkaConsumer(bootstrap_servers=gw.bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        values = [m.value for m in consumer]
        consumer.close()
    assert values == [b"first", b"fire-and-forget"]


def test_create_and_delete_topics(gateways):
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from support import admin
    gw = gateways(env={"KOP_TOPICS_AUTO_CREATE": "false"})
    topic = unique("admin")
    client = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    client.create_topics([NewTopic(topic, 4, 1)])
    status, meta = admin(f"persistent/public/default/{topic}/partitions")
    assert status == 200 and meta["partitions"] == 4
    with pytest.raises(TopicAlreadyExistsError):
        client.create_topics([NewTopic(topic, 4, 1)])
    assert set(client.list_topics()) >= {topic}
    client.delete_topics([topic])
    assert admin(f"persistent/public/default/{topic}/partitions")[0] == 404
    assert topic not in client.list_topics()
    client.close()
