"""The idempotent producer: a retried batch is answered with the original offset and stored once;
sequence gaps and stale epochs get Kafka's errors. Raw requests, so the test controls sequences."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.protocol.producer import (InitProducerIdRequest, InitProducerIdResponse, ProduceRequest,
                                     ProduceResponse)

from kop.protocol.records import Record, build_batch
from support import RawClient, unique

pytestmark = pytest.mark.pulsar


def _batch(producer_id: int, epoch: int, seq: int, values: list[bytes]) -> bytes:
    now = int(time.time() * 1000)
    recs = [Record(i, now, None, v, []) for i, v in enumerate(values)]
    return bytes(build_batch(recs, producer_id=producer_id, producer_epoch=epoch, base_sequence=seq))


def _produce(client: RawClient, topic: str, batch: bytes):
    req = ProduceRequest(acks=-1, timeout_ms=30_000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=batch)])])
    part = client.call(req, 9, ProduceResponse).responses[0].partition_responses[0]
    return part.error_code, part.base_offset


def test_duplicates_are_written_once(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    topic = unique("idem")
    from kafka.admin import KafkaAdminClient, NewTopic
    adm = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    adm.create_topics([NewTopic(topic, 1, 1)])
    adm.close()
    with RawClient(gw.bootstrap) as client:
        init = client.call(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000,
                                                 producer_id=-1, producer_epoch=-1), 4, InitProducerIdResponse)
        assert init.error_code == 0 and init.producer_id >= 0
        pid = init.producer_id
        first = _batch(pid, 0, 0, [b"a", b"b", b"c"])
        assert _produce(client, topic, first)[0] == 0
        base = _produce(client, topic, first)
        second = _produce(client, topic, _batch(pid, 0, 3, [b"d"]))
        again = _produce(client, topic, first)   # an older retry, still remembered
        gap = _produce(client, topic, _batch(pid, 0, 9, [b"z"]))
        assert base[0] == 0 and again == base, "a duplicate must get the original's offset"
        assert second[0] == 0 and second[1] > base[1]
        assert gap[0] == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
        # a second InitProducerId gives a different id (unique across calls)
        other = client.call(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000,
                                                  producer_id=-1, producer_epoch=-1), 4, InitProducerIdResponse)
        assert other.producer_id != pid
    consumer = KafkaConsumer(bootstrap_servers=gw.bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    assert [m.value for m in consumer] == [b"a", b"b", b"c", b"d"]
    consumer.close()


def test_producer_ids_unique_across_gateways(gateways):
    a, b = gateways(), gateways()
    ids = set()
    for gw in (a, b, a, b):
        with RawClient(gw.bootstrap) as client:
            resp = client.call(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000,
                                                     producer_id=-1, producer_epoch=-1), 4, InitProducerIdResponse)
            assert resp.error_code == 0
            ids.add(resp.producer_id)
    assert len(ids) == 4


def test_a_transactional_id_gets_a_new_producer_id_each_time(gateways):
    """Transactions are served (tests/pulsar/test_transactions.py): each InitProducerId of a
    transactional id gives a new producer id at epoch 0 (kop/txn/state.py says why)."""
    gw = gateways()
    tid = unique("tx")
    with RawClient(gw.bootstrap) as client:
        answers = [client.call(InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=60_000,
                                                     producer_id=-1, producer_epoch=-1), 4, InitProducerIdResponse)
                   for _ in range(2)]
    assert [a.error_code for a in answers] == [0, 0]
    assert answers[0].producer_id != answers[1].producer_id and {a.producer_epoch for a in answers} == {0}
