"""Kafka transactions on kop and the real Pulsar (issue 18), with confluent-kafka (librdkafka) and
kafka-python, in both entry formats: committed transactions read once by read_committed consumers,
aborted ones never (but by read_uncommitted consumers), fencing of a zombie producer, a
consume-transform-produce loop with send_offsets_to_transaction, the transaction tools' APIs, and
Kafka's error codes for bad requests (raw protocol)."""

from __future__ import annotations

import importlib
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.producer import (AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest,
                                     ProduceRequest, TxnOffsetCommitRequest)
from kafka.protocol.admin import DescribeTransactionsRequest, ListTransactionsRequest

from support import RawClient, unique

pytestmark = pytest.mark.pulsar


def _topic(bootstrap: str, partitions: int = 2, name: str | None = None) -> str:
    name = name or unique("txn")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(60)
    return name


def _producer(bootstrap: str, tid: str, **extra) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5,
                         "transaction.timeout.ms": 60_000, **extra})
    producer.init_transactions(60)
    return producer


def _read(bootstrap: str, topic: str, isolation: str, expect: int, timeout_s: float = 60,
          partitions: int = 2) -> list[bytes]:
    """Every value of ``topic`` from the start, once ``expect`` have come (or the timeout passed);
    then a little longer, to catch anything that should not be there."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False,
                         "isolation.level": isolation, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    settle = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                values.append(msg.value())
            if len(values) >= expect and settle is None:
                settle = time.monotonic() + 2.0
            if settle is not None and time.monotonic() > settle:
                break
    finally:
        consumer.close()
    return values


def _call(client: RawClient, request, version: int):
    """The raw request, its answer decoded with the matching kafka.protocol response class."""
    module = importlib.import_module(type(request).__module__)
    return client.call(request, version, getattr(module, type(request).__name__.replace("Request", "Response")))


def _send(producer: Producer, topic: str, values: list[bytes]) -> None:
    for i, value in enumerate(values):
        producer.produce(topic, value=value, partition=i % 2)
    producer.flush(60)


def test_committed_once_aborted_never_for_read_committed(gateway):
    topic = _topic(gateway.bootstrap)
    producer = _producer(gateway.bootstrap, unique("tid"))
    committed, aborted = [], []
    for round_ in range(3):
        values = [f"{round_}-{i}".encode() for i in range(50)]
        producer.begin_transaction()
        _send(producer, topic, values)
        if round_ == 1:
            producer.abort_transaction(60)
            aborted += values
        else:
            producer.commit_transaction(60)
            committed += values
    read = _read(gateway.bootstrap, topic, "read_committed", len(committed))
    assert sorted(read) == sorted(committed), "read_committed: each committed record once, no aborted one"
    everything = _read(gateway.bootstrap, topic, "read_uncommitted", len(committed) + len(aborted))
    assert sorted(everything) == sorted(committed + aborted), "read_uncommitted sees the aborted records too"


def test_an_open_transaction_holds_read_committed_consumers_back(gateway):
    topic = _topic(gateway.bootstrap, partitions=1)
    plain = Producer({"bootstrap.servers": gateway.bootstrap})
    producer = _producer(gateway.bootstrap, unique("tid"))
    producer.begin_transaction()
    producer.produce(topic, value=b"inside", partition=0)
    producer.flush(30)
    plain.produce(topic, value=b"after", partition=0)
    plain.flush(30)
    assert _read(gateway.bootstrap, topic, "read_committed", 1, timeout_s=5, partitions=1) == [], \
        "nothing past the open transaction's start"
    assert sorted(_read(gateway.bootstrap, topic, "read_uncommitted", 2, partitions=1)) == [b"after", b"inside"]
    producer.commit_transaction(60)
    assert _read(gateway.bootstrap, topic, "read_committed", 2, partitions=1) == [b"inside", b"after"]


def test_a_zombie_producer_is_fenced(gateway):
    topic = _topic(gateway.bootstrap)
    tid = unique("tid")
    zombie = _producer(gateway.bootstrap, tid)
    zombie.begin_transaction()
    _send(zombie, topic, [b"zombie"])
    fresh = _producer(gateway.bootstrap, tid)  # the same transactional id: the zombie's transaction is aborted
    fresh.begin_transaction()
    _send(fresh, topic, [b"fresh"])
    fresh.commit_transaction(60)
    with pytest.raises(KafkaException) as fenced:
        zombie.commit_transaction(30)
    assert fenced.value.args[0].code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                           KafkaError.INVALID_PRODUCER_EPOCH), fenced.value
    assert _read(gateway.bootstrap, topic, "read_committed", 1) == [b"fresh"]


def test_consume_transform_produce_with_offsets_in_the_transaction(gateway):
    source, sink = _topic(gateway.bootstrap), _topic(gateway.bootstrap)
    plain = Producer({"bootstrap.servers": gateway.bootstrap})
    inputs = [f"in-{i}".encode() for i in range(200)]
    _send(plain, source, inputs)
    group = unique("etl")
    consumer = Consumer({"bootstrap.servers": gateway.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    consumer.subscribe([source])
    producer = _producer(gateway.bootstrap, unique("etl-tid"))
    done, deadline, aborted_once = 0, time.monotonic() + 120, False
    try:
        while done < len(inputs) and time.monotonic() < deadline:
            batch = consumer.consume(50, 1.0)
            batch = [m for m in batch if not m.error()]
            if not batch:
                continue
            producer.begin_transaction()
            for m in batch:
                producer.produce(sink, value=m.value().replace(b"in-", b"out-"), partition=m.partition())
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata(), 30)
            if not aborted_once:  # the first batch is aborted: its records must come again and once
                producer.abort_transaction(30)
                aborted_once = True
                for tp in consumer.committed(consumer.assignment(), 30):
                    consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))
                continue
            producer.commit_transaction(30)
            done += len(batch)
    finally:
        consumer.close()
    assert done == len(inputs)
    outputs = _read(gateway.bootstrap, sink, "read_committed", len(inputs))
    assert sorted(outputs) == sorted(v.replace(b"in-", b"out-") for v in inputs), "exactly the input, once each"
    check = Consumer({"bootstrap.servers": gateway.bootstrap, "group.id": group})
    try:
        committed = check.committed([TopicPartition(source, p) for p in range(2)], 30)
    finally:
        check.close()
    assert sum(tp.offset for tp in committed) == len(inputs), committed


def test_transaction_tools_apis_and_bad_requests(gateways):
    gw = gateways()
    topic = _topic(gw.bootstrap)
    tid = unique("tid")
    with RawClient(gw.bootstrap) as client:
        init = _call(client, InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=60_000,
                                                 producer_id=-1, producer_epoch=-1), version=4)
        assert init.error_code == 0
        pid, epoch = init.producer_id, init.producer_epoch
        assert _call(client, EndTxnRequest(transactional_id=unique("nobody"), producer_id=pid, producer_epoch=epoch,
                                          committed=True), version=3).error_code == 49  # INVALID_PRODUCER_ID_MAPPING
        topics = [AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(name=topic, partitions=[0])]
        stale = _call(client, AddPartitionsToTxnRequest(v3_and_below_transactional_id=tid, v3_and_below_producer_id=pid,
                                                      v3_and_below_producer_epoch=epoch + 1,
                                                      v3_and_below_topics=topics), version=3)
        assert stale.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 90  # FENCED
        added = _call(client, AddPartitionsToTxnRequest(v3_and_below_transactional_id=tid, v3_and_below_producer_id=pid,
                                                      v3_and_below_producer_epoch=epoch,
                                                      v3_and_below_topics=topics), version=3)
        assert added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0
        described = _call(client, DescribeTransactionsRequest(transactional_ids=[tid, unique("nobody")]), version=0)
        state, missing = described.transaction_states
        assert (state.error_code, state.transaction_state, state.producer_id) == (0, "Ongoing", pid)
        assert [(t.topic, t.partitions) for t in state.topics] == [(topic, [0])]
        assert missing.error_code == 105  # TRANSACTIONAL_ID_NOT_FOUND
        listed = _call(client, ListTransactionsRequest(state_filters=["Ongoing", "Nope"], producer_id_filters=[]),
                             version=0)
        assert tid in [t.transactional_id for t in listed.transaction_states]
        assert listed.unknown_state_filters == ["Nope"]
        # a transactional batch to a partition not in the transaction: INVALID_TXN_STATE
        from kop.protocol.records import Record, build_batch
        batch = bytes(build_batch([Record(0, int(time.time() * 1000), None, b"x", [])], producer_id=pid,
                                  producer_epoch=epoch, base_sequence=0, is_transactional=True))
        P = ProduceRequest
        produced = _call(client, P(transactional_id=tid, acks=-1, timeout_ms=10_000, topic_data=[P.TopicProduceData(
            name=topic, partition_data=[P.TopicProduceData.PartitionProduceData(index=1, records=batch)])]),
            version=9)
        assert produced.responses[0].partition_responses[0].error_code == 48  # INVALID_TXN_STATE
        committed = _call(client, TxnOffsetCommitRequest(transactional_id=tid, group_id=unique("g"), producer_id=pid,
                                                       producer_epoch=epoch, generation_id=-1, member_id="",
                                                       group_instance_id=None, topics=[]), version=3)
        assert committed.topics == []
        assert _call(client, EndTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                                         committed=False), version=3).error_code == 0


def test_native_pulsar_consumers_can_tell_transactional_records_and_outcomes(gateways, pulsar):
    """What a native Pulsar consumer sees (README, "Transactions"): every record of a transaction
    carries ``__kafka_txn=<producer id>:<epoch>``, and each transaction ends in a marker message
    (``__kafka_control`` = commit or abort, the same ``__kafka_txn``)."""
    import pulsar as pulsar_client
    from support import SERVICE_URL
    gw = gateways("--entry-format", "pulsar")
    topic = _topic(gw.bootstrap, partitions=1)
    producer = _producer(gw.bootstrap, unique("tid"))
    for commit in (True, False):
        producer.begin_transaction()
        for i in range(3):
            producer.produce(topic, value=f"{commit}-{i}".encode(), partition=0)
        producer.flush(30)
        producer.commit_transaction(30) if commit else producer.abort_transaction(30)
    client = pulsar_client.Client(SERVICE_URL, operation_timeout_seconds=30)
    try:
        reader = client.create_reader(f"persistent://public/default/{topic}-partition-0", pulsar_client.MessageId.earliest)
        seen = []
        while reader.has_message_available():
            msg = reader.read_next(10_000)
            seen.append((msg.properties().get("__kafka_control"), msg.properties().get("__kafka_txn"), msg.data()))
        reader.close()
    finally:
        client.close()
    records = [(txn, data) for control, txn, data in seen if control is None]
    markers = [(control, txn) for control, txn, _ in seen if control is not None]
    assert [data for _, data in records] == [b"True-0", b"True-1", b"True-2", b"False-0", b"False-1", b"False-2"]
    [identity] = {txn for txn, _ in records}
    assert identity and identity.count(":") == 1, "one producer id:epoch on every transactional record"
    assert markers == [("commit", identity), ("abort", identity)]
