"""Consumer groups with real clients: subscribe, share the partitions, commit, resume after a
gateway restart exactly from the committed offsets."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from support import unique

pytestmark = pytest.mark.pulsar
FAST_GROUPS = {"KOP_GROUPS_INITIAL_REBALANCE_DELAY_MS": "300"}


def _create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep it alive until the result is in
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def _produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    for i in range(start, start + count):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i,
                         on_delivery=lambda err, msg: err and errors.append(err))
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0 and not errors


def _consumer(bootstrap: str, group: str, **extra) -> Consumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 10_000, "heartbeat.interval.ms": 1000}
    conf.update(extra)
    return Consumer(conf)


def _drain(consumers: list[Consumer], want: int, timeout: float = 90) -> dict[bytes, int]:
    """Poll all consumers until `want` records came in; commit synchronously as they go."""
    seen: dict[bytes, int] = {}
    deadline = time.monotonic() + timeout
    while sum(seen.values()) < want and time.monotonic() < deadline:
        for consumer in consumers:
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    continue
                seen[msg.value()] = seen.get(msg.value(), 0) + 1
            try:
                consumer.commit(asynchronous=False)
            except Exception:  # nothing to commit yet / rebalance in progress
                pass
    return seen


def test_group_shares_partitions_and_resumes_after_restart(gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("grp"), unique("g")
    _create(gw.bootstrap, topic, 4)
    _produce(gw.bootstrap, topic, 2000)
    consumers = [_consumer(gw.bootstrap, group) for _ in range(2)]
    for c in consumers:
        c.subscribe([topic])
    seen = _drain(consumers, 2000)
    assert len(seen) == 2000 and set(seen.values()) == {1}, "every record exactly once"
    assignments = [set(tp.partition for tp in c.assignment()) for c in consumers]
    assert assignments[0] | assignments[1] == {0, 1, 2, 3} and not assignments[0] & assignments[1]
    for c in consumers:
        c.close()

    gw.stop()
    gw2 = gateways(env=FAST_GROUPS)
    _produce(gw2.bootstrap, topic, 500, start=2000)
    resumed = _consumer(gw2.bootstrap, group)
    resumed.subscribe([topic])
    seen = _drain([resumed], 500, timeout=60)
    time.sleep(1)
    seen.update({m.value(): 1 for m in resumed.consume(100, 1.0) if not m.error()})
    resumed.close()
    assert set(seen) == {b"v%d" % i for i in range(2000, 2500)}, "resumed exactly at the committed offsets"


def test_committed_offsets_and_group_listing(gateways):
    from kafka import KafkaAdminClient
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("grp"), unique("g")
    _create(gw.bootstrap, topic, 2)
    _produce(gw.bootstrap, topic, 200)
    consumer = _consumer(gw.bootstrap, group)
    consumer.subscribe([topic])
    assert sum(_drain([consumer], 200).values()) == 200
    admin = KafkaAdminClient(bootstrap_servers=gw.bootstrap)

    def listed() -> list[str]:
        return [g["group_id"] if isinstance(g, dict) else g[0] for g in admin.list_groups()]
    assert group in listed()
    described = admin.describe_groups([group])[group]
    assert described["group_state"] == "Stable" and len(described["members"]) == 1, described
    assignment = described["members"][0]["member_assignment"]
    assert assignment, described  # decoded by kafka-python: the partitions the member owns
    offsets = admin.list_group_offsets(group)[group]  # the multi-group OffsetFetch v8+
    assert {tp.partition for tp in offsets} == {0, 1} and all(o.offset > 0 for o in offsets.values())
    consumer.close()
    time.sleep(0.5)
    admin.delete_groups([group])
    assert group not in listed()
    admin.close()
