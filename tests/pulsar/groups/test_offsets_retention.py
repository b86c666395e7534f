"""Group offsets as Kafka keeps them: they expire offsets.retention.minutes after the group became Empty
(one by one from their commits for a group that never had members), taking their Pulsar
subscriptions with them, while a group with members keeps its own; and commits survive a ledger
rollover of ``__offsets`` on a Pulsar whose retention is 0 (Pulsar's ``__compaction`` cursor, which
the topic's compaction-threshold policy makes it create, holds what compaction has not processed).

Each gateway here has a system namespace of its own: gateways sharing one form one Kafka cluster,
and its group coordinator must be the gateway under test, not some other kop running here.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from support import admin, drop_namespace, unique

pytestmark = pytest.mark.pulsar


@pytest.fixture
def system_namespace():
    made = []

    def make(retention: dict | None = None) -> str:
        ns = f"public/{unique('kop-sys')}"
        assert admin(f"namespaces/{ns}", method="PUT")[0] in (200, 204)
        if retention is not None:
            assert admin(f"namespaces/{ns}/retention", method="POST", body=retention)[0] in (200, 204)
        made.append(ns)
        return ns
    yield make
    for ns in made:
        drop_namespace(ns)


def _topic(bootstrap: str, records: int) -> str:
    topic = unique("ret-g")
    client = AdminClient({"bootstrap.servers": bootstrap})
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(records):
        producer.produce(topic, f"r{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    return topic


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 6000})


def _consume_and_commit(consumer: Consumer, topic: str, want: int) -> None:
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 60
    while got < want and time.monotonic() < deadline:
        got += sum(1 for m in consumer.consume(100, 0.5) if m.error() is None)
    assert got == want
    consumer.commit(asynchronous=False)


def _subscriptions(topic: str) -> set[str]:
    status, stats = admin(f"persistent/public/default/{topic}-partition-0/stats")
    assert status == 200, stats
    return set(stats.get("subscriptions", {}))


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = _consumer(bootstrap, group)
    try:
        return consumer.committed([TopicPartition(topic, 0)], timeout=30)[0].offset
    finally:
        consumer.close()


def test_offsets_of_empty_groups_expire_with_their_subscriptions(gateways, system_namespace):
    sys_ns = system_namespace()
    gw = gateways(env={"KOP_PULSAR_SYSTEM_NAMESPACE": sys_ns, "KOP_GROUPS_OFFSETS_RETENTION_MINUTES": "0.1"})
    topic = _topic(gw.bootstrap, 5)
    left, simple, active = unique("g-left"), unique("g-simple"), unique("g-active")

    leaver = _consumer(gw.bootstrap, left)
    _consume_and_commit(leaver, topic, 5)
    leaver.close()  # LeaveGroup: the group is Empty from now on
    committer = _consumer(gw.bootstrap, simple)  # never joins: commits with assign() semantics
    committer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    committer.close()
    stayer = _consumer(gw.bootstrap, active)
    _consume_and_commit(stayer, topic, 5)

    subs = {f"kafka-group-{g}" for g in (left, simple, active)}
    deadline = time.monotonic() + 20
    while not subs <= _subscriptions(topic) and time.monotonic() < deadline:
        stayer.poll(0.2)
    assert subs <= _subscriptions(topic), "the cursor sync should have created the groups' subscriptions"

    # 6 s of retention, swept every 10 s: both idle groups go within ~20 s; the active one stays.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stayer.poll(0.5)
        remaining = _subscriptions(topic)
        if f"kafka-group-{left}" not in remaining and f"kafka-group-{simple}" not in remaining:
            break
    remaining = _subscriptions(topic)
    assert f"kafka-group-{left}" not in remaining and f"kafka-group-{simple}" not in remaining, remaining
    assert f"kafka-group-{active}" in remaining
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    listed = {g.group_id for g in client.list_consumer_groups().result(30).valid}
    assert left not in listed and simple not in listed and active in listed
    assert _committed(gw.bootstrap, left, topic) < 0 and _committed(gw.bootstrap, simple, topic) < 0
    stayer.poll(0.5)
    assert _committed(gw.bootstrap, active, topic) > 0
    stayer.close()
    assert f"group {left}: offsets expired (Empty for" in gw.log()
    assert f"group {simple}: offsets expired (its commits are older" in gw.log()


def test_commits_survive_offsets_rollover_on_retention_zero(gateways, system_namespace):
    sys_ns = system_namespace({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0})
    env = {"KOP_PULSAR_SYSTEM_NAMESPACE": sys_ns, "KOP_GROUPS_OFFSETS_PARTITIONS": "1"}
    gw = gateways(env=env)
    topic = _topic(gw.bootstrap, 3)
    group = unique("g-kept")
    consumer = _consumer(gw.bootstrap, group)
    _consume_and_commit(consumer, topic, 3)
    consumer.close()
    committed = _committed(gw.bootstrap, group, topic)
    assert committed > 0

    offsets = f"persistent/{sys_ns}/__offsets-partition-0"
    first = admin(f"{offsets}/internalStats")[1]["ledgers"][0]["ledgerId"]
    assert admin(f"{offsets}/unload", method="PUT")[0] in (200, 204)
    other = _consumer(gw.bootstrap, unique("g-other"))  # a commit into the next ledger
    _consume_and_commit(other, topic, 3)
    other.close()
    assert admin(f"{offsets}/trim", method="POST")[0] in (200, 204)
    stats = admin(f"{offsets}/internalStats")[1]
    assert stats["ledgers"][-1]["ledgerId"] != first, "the unload should have rolled the ledger over"
    assert "__compaction" in stats["cursors"], stats["cursors"]

    gw.stop()
    again = gateways(env=env)
    assert _committed(again.bootstrap, group, topic) == committed
