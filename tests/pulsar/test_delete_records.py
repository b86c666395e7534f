"""DeleteRecords (API 21): the log start moves; ListOffsets earliest and Fetch below it answer as Kafka
does; the start survives a restart and is shared by a fleet; bad input changes nothing; and Pulsar
reclaims the ledgers wholly before the start once no Kafka group's subscription holds them and
retention allows (here a topic with retention.bytes=0: Pulsar's retention 0)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from kafka.protocol.admin import DeleteRecordsRequest, DeleteRecordsResponse
from kafka.protocol.consumer import FetchRequest, FetchResponse

from support import RawClient, admin, unique

pytestmark = pytest.mark.pulsar


def _produce(bootstrap: str, topic: str, count: int, start: int = 0) -> list[int]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    acked: list[int] = []
    for i in range(start, start + count):  # one batch each: offsets in several entries
        producer.produce(topic, f"r{i}".encode(), partition=0, on_delivery=lambda e, m: acked.append(m.offset()))
        producer.flush(30)
    assert len(acked) == count
    return acked


def _earliest(client: AdminClient, topic: str) -> int:
    tp = TopicPartition(topic, 0)
    return client.list_offsets({tp: OffsetSpec.earliest()})[tp].result(30).offset


def _delete(client: AdminClient, topic: str, offset: int):
    tp = TopicPartition(topic, 0, offset)
    return client.delete_records([tp])[tp]


def _fetch_error(bootstrap: str, topic: str, offset: int) -> int:
    F = FetchRequest
    with RawClient(bootstrap) as raw:
        resp = raw.call(F(replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                          session_id=0, session_epoch=-1, topics=[F.FetchTopic(topic=topic, partitions=[
                              F.FetchTopic.FetchPartition(partition=0, current_leader_epoch=-1, fetch_offset=offset,
                                                          last_fetched_epoch=-1, log_start_offset=-1,
                                                          partition_max_bytes=1 << 20)])],
                          forgotten_topics_data=[], rack_id=""), 12, FetchResponse)
    return resp.responses[0].partitions[0].error_code


def _consume_from(bootstrap: str, topic: str, offset: int, want: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("dr"), "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, offset)])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < want and time.monotonic() < deadline:
        got += [m.value() for m in consumer.consume(100, 0.5) if m.error() is None]
    consumer.close()
    return got


def test_delete_records_moves_the_log_start(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    topic = unique("dr")
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    offsets = _produce(gw.bootstrap, topic, 30)
    assert _earliest(client, topic) == offsets[0]

    assert _delete(client, topic, offsets[10]).result(30).low_watermark == offsets[10]
    assert _earliest(client, topic) == offsets[10]
    assert _fetch_error(gw.bootstrap, topic, offsets[5]) == KafkaError.OFFSET_OUT_OF_RANGE
    assert _fetch_error(gw.bootstrap, topic, offsets[10]) == 0
    # a consumer that asks for a deleted offset resets to the start (auto.offset.reset=earliest)
    assert _consume_from(gw.bootstrap, topic, offsets[2], 20) == [f"r{i}".encode() for i in range(10, 30)]

    # below the start: nothing changes; beyond the high watermark / an unknown topic: refused
    assert _delete(client, topic, offsets[3]).result(30).low_watermark == offsets[10]
    beyond = _delete(client, topic, offsets[-1] + (1 << 20))
    with pytest.raises(Exception) as info:
        beyond.result(30)
    assert info.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    R = DeleteRecordsRequest
    with RawClient(gw.bootstrap) as raw:  # (librdkafka refuses unknown partitions itself, before asking)
        resp = raw.call(R(topics=[R.DeleteRecordsTopic(name=name, partitions=[
            R.DeleteRecordsTopic.DeleteRecordsPartition(partition_index=p, offset=o)])
            for name, p, o in ((unique("dr-none"), 0, 5), (topic, 7, 5), (topic, 0, -5))], timeout_ms=10000),
            2, DeleteRecordsResponse)
    assert [(t.partitions[0].error_code, t.partitions[0].low_watermark) for t in resp.topics] == [
        (KafkaError.UNKNOWN_TOPIC_OR_PART, -1), (KafkaError.UNKNOWN_TOPIC_OR_PART, -1),
        (KafkaError.OFFSET_OUT_OF_RANGE, -1)]
    assert _earliest(client, topic) == offsets[10]

    # shared by a fleet, and kept across a restart
    other = gateways("--entry-format", entry_format)
    assert _earliest(AdminClient({"bootstrap.servers": other.bootstrap}), topic) == offsets[10]
    gw.stop()
    again = gateways("--entry-format", entry_format)
    again_client = AdminClient({"bootstrap.servers": again.bootstrap})
    assert _earliest(again_client, topic) == offsets[10]
    assert _fetch_error(again.bootstrap, topic, offsets[9]) == KafkaError.OFFSET_OUT_OF_RANGE
    # -1: up to the high watermark
    assert _delete(again_client, topic, -1).result(30).low_watermark > offsets[-1]


def test_pulsar_reclaims_what_lies_before_the_start(gateways):
    gw = gateways()
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    topic = unique("dr-reclaim")
    # retention.bytes=0: Pulsar retention 0 (keep nothing no cursor needs), the TTL stays 7 days
    client.create_topics([NewTopic(topic, 1, 1, config={"retention.bytes": "0"})])[topic].result(30)
    first = _produce(gw.bootstrap, topic, 10)
    group = unique("dr-holder")  # a group that committed at the start holds every ledger
    holder = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group, "enable.auto.commit": False})
    holder.commit(offsets=[TopicPartition(topic, 0, first[0])], asynchronous=False)
    holder.close()
    path = f"persistent/public/default/{topic}-partition-0"
    deadline = time.monotonic() + 20
    while f"kafka-group-{group}" not in admin(f"{path}/stats")[1].get("subscriptions", {}):
        assert time.monotonic() < deadline, "the cursor sync should have created the group's subscription"
        time.sleep(0.3)
    old_ledger = admin(f"{path}/internalStats")[1]["ledgers"][0]["ledgerId"]
    assert admin(f"{path}/unload", method="PUT")[0] in (200, 204)  # roll the ledger over
    second = _produce(gw.bootstrap, topic, 5, start=10)
    assert admin(f"{path}/trim", method="POST")[0] in (200, 204)
    time.sleep(1)
    assert admin(f"{path}/internalStats")[1]["ledgers"][0]["ledgerId"] == old_ledger, "the group holds it"

    assert _delete(client, topic, second[0]).result(30).low_watermark == second[0]
    deadline = time.monotonic() + 20
    while admin(f"{path}/internalStats")[1]["ledgers"][0]["ledgerId"] == old_ledger:
        assert time.monotonic() < deadline, "Pulsar should have deleted the ledger before the log start"
        admin(f"{path}/trim", method="POST")
        time.sleep(0.5)
    assert admin(f"{path}/stats")[1]["subscriptions"][f"kafka-group-{group}"]["msgBacklog"] == 5
    assert _consume_from(gw.bootstrap, topic, second[0], 5) == [f"r{i}".encode() for i in range(10, 15)]


def test_one_poll_gets_every_partition_after_delete_records(gateways):
    """kafka-python's own test_delete_records: a fresh consumer of six partitions, four of them with
    records deleted, expects all 380 records left in its *first* poll, as one Kafka Fetch answer
    gives them. Readers opened by that fetch receive their entries a few milliseconds apart; the
    answer waits a moment for partitions whose records exist (handlers/fetch.py)."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import NewTopic as KNewTopic
    gw = gateways()
    topics = [unique("drpoll"), unique("drpoll")]
    admin_client = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    admin_client.create_topics([KNewTopic(t, 3, 1) for t in topics])
    parts = [KTopicPartition(t, p) for t in topics for p in range(3)]
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap)
    for tp in parts:
        for i in range(100):
            producer.send(tp.topic, value=b"v%d" % i, partition=tp.partition)
    producer.flush()
    result = admin_client.delete_records({parts[0]: -1, parts[1]: 50, parts[3]: 40, parts[5]: 30}, timeout_ms=5000)
    assert {tp: r["low_watermark"] for tp, r in result.items()} == {parts[0]: 100, parts[1]: 50, parts[3]: 40,
                                                                      parts[5]: 30}
    consumer = KafkaConsumer(bootstrap_servers=gw.bootstrap, group_id=None, auto_offset_reset="earliest")
    try:
        consumer.assign(parts)
        first = consumer.poll(max_records=600, timeout_ms=5000)
        assert sum(len(v) for v in first.values()) == 380, {tp: len(v) for tp, v in first.items()}
        assert [r.offset for r in first[parts[1]]] == list(range(50, 100))
        assert not consumer.poll(max_records=1, timeout_ms=1000)
    finally:
        consumer.close()
        admin_client.close()
