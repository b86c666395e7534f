"""Several gateways in front of one Pulsar form one Kafka cluster (real Pulsar, real clients).

1. Two gateways: Metadata from either lists both as brokers and spreads partition leadership; each
   ``__offsets`` partition is held by exactly one of them (Pulsar's stats show the exclusive
   producer) and it is the one rendezvous hashing prefers; FindCoordinator on either gateway names
   that holder for every group.
2. A gateway joins: the partitions it is preferred for are handed over to it, and every offset
   committed through the first gateway is read back through the new coordinator.
3. kill -9 of the coordinator while a group (2 confluent-kafka + 1 kafka-python members) consumes:
   the other gateway takes the group over, the members carry on, every record is consumed, and no
   committed offset is lost — neither the group's (a lower bound, taken just before the kill) nor
   those of a group whose commits were all acknowledged before the kill (exactly equal).
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from group_client_members import (ConfluentMember, KafkaPythonMember, Tally, committed, create_topic,
                                  high_watermarks, produce, values, wait_until)
from kafka.protocol.metadata import FindCoordinatorRequest, FindCoordinatorResponse
from kop.groups.offsets_format import partition_for
from kop.mapping.placement import derive_node_id, offsets_partition_key, place
from support import SYSTEM_NAMESPACE, RawClient, admin, unique

pytestmark = [pytest.mark.pulsar, pytest.mark.timeout(240)]
FLEET = {"KOP_GROUPS_INITIAL_REBALANCE_DELAY_MS": "300", "KOP_CLUSTER_HANDOVER_DELAY_S": "1"}
OFFSETS_PARTITIONS = 8


def node(gw) -> int:
    return derive_node_id("127.0.0.1", gw.port)


def holders() -> dict[int, list[int]]:
    """Node ids of the producers on each __offsets partition, as Pulsar's stats show them."""
    status, stats = admin(f"persistent/{SYSTEM_NAMESPACE}/__offsets/partitioned-stats?perPartition=true")
    assert status == 200, stats
    out: dict[int, list[int]] = {}
    for name, part in stats["partitions"].items():
        ids = [int(p["producerName"].rsplit("-", 1)[1]) for p in part["publishers"]
               if p.get("producerName", "").startswith("kop-gateway-")]
        out[int(name.rsplit("-partition-", 1)[1])] = ids
    return out


def settled(gws) -> bool:
    """Every __offsets partition held by exactly the gateway rendezvous hashing prefers."""
    live = [node(g) for g in gws]
    current = holders()
    return all(current.get(p) == [place(offsets_partition_key(p), live)] for p in range(OFFSETS_PARTITIONS))


def find_coordinator(gw, group: str) -> tuple[int, int, str, int]:
    with RawClient(gw.bootstrap) as client:
        resp = client.call(FindCoordinatorRequest(key=group, key_type=0), 2, FindCoordinatorResponse)
    return resp.error_code, resp.node_id, resp.host, resp.port


def group_held_by(gw, prefix: str) -> str:
    """A fresh group id whose __offsets partition ``gw`` holds."""
    mine = {p for p, ids in holders().items() if ids == [node(gw)]}
    assert mine, f"{gw.bootstrap} holds no __offsets partition"
    while True:
        group = unique(prefix)
        if partition_for(group, OFFSETS_PARTITIONS) in mine:
            return group


def committed_now(bootstrap: str, group: str, topic: str, partitions: int, timeout: float = 30) -> dict[int, int]:
    """committed(), retried while the new coordinator is still loading (a retriable error
    confluent-kafka's AdminClient hands back instead of retrying)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return committed(bootstrap, group, topic, partitions)
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in (
                    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NOT_COORDINATOR,
                    KafkaError.COORDINATOR_NOT_AVAILABLE) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def commit_simple(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commits without joining (assign + commit), as tools and stream processors do."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def test_two_gateways_are_one_cluster(gateways):
    a, b = gateways(env=FLEET), gateways(env=FLEET)
    assert wait_until(lambda: settled([a, b]), 30), holders()
    expected = {node(a): ("127.0.0.1", a.port), node(b): ("127.0.0.1", b.port)}
    topic = unique("fleet-md")
    create_topic(a.bootstrap, topic, 16)
    for gw in (a, b):
        md = AdminClient({"bootstrap.servers": gw.bootstrap}).list_topics(topic, timeout=30)
        assert {i: (br.host, br.port) for i, br in md.brokers.items()} == expected
        leaders = {p.id: p.leader for p in md.topics[topic].partitions.values()}
        assert leaders == {p: place(f"{topic}/{p}", expected) for p in range(16)}
        assert set(leaders.values()) == set(expected), "16 partitions should be led by both gateways"
        assert md.controller_id == min(expected)
    current = holders()
    for i in range(20):
        group = unique(f"fleet-fc{i}")
        holder = current[partition_for(group, OFFSETS_PARTITIONS)][0]
        answers = {find_coordinator(gw, group) for gw in (a, b)}
        assert answers == {(0, holder, *expected[holder])}, (group, answers)


def test_joining_gateway_takes_groups_over(gateways):
    a = gateways(env=FLEET)
    assert wait_until(lambda: settled([a]), 30), holders()
    topic = unique("fleet-join")
    create_topic(a.bootstrap, topic, 3)
    produce(a.bootstrap, topic, values("j", 0, 30))
    # One group per __offsets partition, so that whichever partitions b is given, groups move.
    by_partition: dict[int, str] = {}
    while len(by_partition) < OFFSETS_PARTITIONS:
        group = unique("fleet-j")
        by_partition.setdefault(partition_for(group, OFFSETS_PARTITIONS), group)
    groups = {group: {p: 10 * i + p for p in range(3)} for i, group in enumerate(by_partition.values())}
    for group, offsets in groups.items():
        commit_simple(a.bootstrap, group, topic, offsets)
    b = gateways(env=FLEET)
    assert wait_until(lambda: settled([a, b]), 30), holders()
    moved = [g for g in groups if holders()[partition_for(g, OFFSETS_PARTITIONS)] == [node(b)]]
    for group, offsets in groups.items():
        for gw in (a, b):
            assert committed_now(gw.bootstrap, group, topic, 3) == offsets, (group, gw.bootstrap)
    preferred_by_b = {p for p in range(OFFSETS_PARTITIONS)
                      if place(offsets_partition_key(p), [node(a), node(b)]) == node(b)}
    assert {partition_for(g, OFFSETS_PARTITIONS) for g in moved} == preferred_by_b
    assert ("coordinating __offsets partition" in b.log()) == bool(preferred_by_b)


def test_coordinator_killed_group_continues(gateways):
    a, b = gateways(env=FLEET), gateways(env=FLEET)
    assert wait_until(lambda: settled([a, b]), 30), holders()
    if not any(ids == [node(a)] for ids in holders().values()):
        a, b = b, a  # rendezvous gave the first gateway nothing (1 in 256): the victim is the other
    topic, partitions, count = unique("fleet-kill"), 4, 6000
    create_topic(b.bootstrap, topic, partitions)
    wanted = values("k", 0, count)
    produce(b.bootstrap, topic, wanted)

    exact = group_held_by(a, "fleet-exact")
    exact_offsets = {p: 100 + p for p in range(partitions)}
    commit_simple(b.bootstrap, exact, topic, exact_offsets)

    group = group_held_by(a, "fleet-kill")
    bootstrap = f"{a.bootstrap},{b.bootstrap}"
    tally = Tally()
    members = [ConfluentMember("c1", bootstrap, group, topic, tally),
               ConfluentMember("c2", bootstrap, group, topic, tally),
               KafkaPythonMember("p1", bootstrap, group, topic, tally)]
    for m in members:
        m.start()
    try:
        assert wait_until(lambda: sum(tally.snapshot().values()) >= count // 3, 90), tally.snapshot().total()
        before = committed(b.bootstrap, group, topic, partitions)
        a.kill()
        killed_at = time.monotonic()
        assert wait_until(lambda: holders()[partition_for(group, OFFSETS_PARTITIONS)] == [node(b)], 30), holders()
        took_over_s = time.monotonic() - killed_at
        after = committed_now(b.bootstrap, group, topic, partitions)
        assert all(after[p] >= before[p] for p in range(partitions)), (before, after)
        assert committed_now(b.bootstrap, exact, topic, partitions) == exact_offsets
        assert wait_until(lambda: tally.have_all(wanted), 120), \
            f"{len(set(wanted) - set(tally.snapshot()))} records never consumed"
        for m in members:
            assert not m.errors, f"{m.name} died:\n{m.errors[0]}"
    finally:
        for m in members:
            m.stop_event.set()
        for m in members:
            m.join(60)
    assert committed(b.bootstrap, group, topic, partitions) == high_watermarks(b.bootstrap, topic, partitions)
    print(f"takeover seen in Pulsar {took_over_s:.1f} s after kill -9; "
          f"{sum(n - 1 for n in tally.snapshot().values() if n > 1)} records redelivered")
