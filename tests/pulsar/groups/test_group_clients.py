"""Consumer groups with real clients of three libraries against kop and the real Pulsar.

1. A mixed group (3 confluent-kafka + 1 kafka-python + 1 aiokafka) shares a 6-partition topic of
   30,000 records: each record exactly once; a member leaves and the rest take over its partitions;
   the whole group restarts and resumes exactly at the committed offsets.
2. Static membership (KIP-345): a confluent-kafka member with a group.instance.id closes (no
   LeaveGroup) and comes back within the session timeout: same partitions, nobody else rebalances.
3. cooperative-sticky (KIP-429): a third member joins; the first two are revoked only what moves.
4. Session timeout: a kafka-python member is SIGKILLed; after the session timeout the survivor
   owns every partition.

Members (group_client_members.py) commit synchronously after each batch and before giving partitions
up (revoke callbacks; kafka-python's own pre-rebalance auto-commit), so a rebalance by itself must not
cause a record to be delivered twice.

The last three tests pin down, on the wire, bugs and divergences from Kafka the clients once ran into
(a member joining a group already rebalancing; a returning static leader; a returning static member
with new metadata).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState

from group_client_members import (AIOKafkaMember, ConfluentMember, KafkaPythonMember, Member, Tally, committed,
                                  cover, create_topic, describe, high_watermarks, missing_report, produce, values,
                                  wait_until)
from support import unique

pytestmark = [pytest.mark.pulsar, pytest.mark.timeout(180)]
FAST_GROUPS = {"KOP_GROUPS_INITIAL_REBALANCE_DELAY_MS": "300"}
PARTITIONS = 6
HERE = Path(__file__).resolve().parent


def _healthy(members: list[Member]) -> None:
    for m in members:
        assert not m.errors, f"{m.name} ({m.kind}) died:\n{m.errors[0]}"


def _stop(members: list[Member], timeout: float = 60, check: bool = True) -> None:
    """Stop members together (each commits, then closes)."""
    for m in members:
        m.stop_event.set()
    for m in members:
        if m.is_alive():
            m.join(timeout)
    assert not check or not [m.name for m in members if m.is_alive()], "members did not close"


def _settle(members: list[Member], quiet: float = 2.0, timeout: float = 30) -> None:
    """Wait until no member's rebalance callbacks fired for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last = [m.callback_counts() for m in members]
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = [m.callback_counts() for m in members]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError(f"the group did not settle: {members}")


def _stable_description(bootstrap: str, group: str, members: int, timeout: float = 30):
    """kop's DescribeGroups once the group is Stable with `members` members."""
    found = []

    def check() -> bool:
        d = describe(bootstrap, group)
        found[:] = [d]
        return d.state == ConsumerGroupState.STABLE and len(d.members) == members
    assert wait_until(check, timeout, interval=0.3), f"not Stable with {members} members: {found}"
    return found[0]


def _described_partitions(description) -> list[frozenset[int]]:
    return [frozenset(tp.partition for tp in m.assignment.topic_partitions) for m in description.members]


def _mixed(bootstrap: str, group: str, topic: str, tally: Tally, tag: str) -> list[Member]:
    return [AIOKafkaMember(f"{tag}-aio", bootstrap, group, topic, tally, hold=True),
            KafkaPythonMember(f"{tag}-kp", bootstrap, group, topic, tally)] + [
        ConfluentMember(f"{tag}-ck{i}", bootstrap, group, topic, tally) for i in range(3)]


def _start_mixed(members: list[Member]) -> None:
    """aiokafka first, alone (its start() returns once it has partitions), then the other four at once;
    aiokafka reads once all five share the partitions.

    Workaround for a kop bug (see test_second_member_joining_during_rebalance_is_accepted): a new member
    joining while the group is PreparingRebalance gets UNKNOWN_SERVER_ERROR. librdkafka and kafka-python
    retry the join with the member id they were given and get in; aiokafka's start() gives up, and the
    member id it leaves behind holds the rebalance until it expires (a session timeout)."""
    members[0].start()
    assert wait_until(lambda: members[0].owned_now() or members[0].errors, 60), members[0]
    _healthy(members[:1])
    for m in members[1:]:
        m.start()
    assert wait_until(lambda: cover(members, PARTITIONS) or any(m.errors for m in members), 60), \
        f"no assignment covering all: {members}"
    _healthy(members)
    members[0].go.set()


def _report(label: str, **numbers) -> None:
    print(f"\n[{label}] " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in numbers.items()))


def _generations(log: str, group: str) -> list[tuple[int, int, str, str]]:
    """(generation, members, protocol, leader) of each completed rebalance, from kop's log."""
    return [(int(g), int(n), p, leader) for g, n, p, leader in re.findall(
        rf"group {re.escape(group)}: generation (\d+) with (\d+) members, protocol (\S+), leader (\S+)", log)]


# -- 1. mixed clients ----------------------------------------------------------------------------

def test_mixed_group_shares_takes_over_and_resumes(gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("mix"), unique("g")
    create_topic(gw.bootstrap, topic, PARTITIONS)
    first = values("a", 0, 30_000)
    started = time.monotonic()
    produce(gw.bootstrap, topic, first)
    produce_s = time.monotonic() - started

    tally = Tally()
    members = _mixed(gw.bootstrap, group, topic, tally, "r1")
    rest: list[Member] = []
    members2: list[Member] = []
    try:
        _start_mixed(members)
        assert wait_until(lambda: all(m.subscribed_at for m in members), 60), members
        assert wait_until(lambda: cover(members, PARTITIONS), 60), f"no assignment covering all: {members}"
        join_s = time.monotonic() - max(m.subscribed_at for m in members)
        # Every record, each exactly once (nobody failed; rebalances commit before revoking).
        assert wait_until(lambda: tally.have_all(first), 120), \
            f"missing {sum(1 for v in first if not tally.counts[v])} records; {members}"
        consume_s = time.monotonic() - max(m.subscribed_at for m in members)
        time.sleep(1.5)  # a second delivery of anything would show up now
        counts = tally.snapshot()
        assert set(counts) == set(first), "records that were never produced"
        assert not tally.duplicates(), f"{len(tally.duplicates())} records delivered twice: " \
                                       f"{list(tally.duplicates().items())[:5]}"
        _healthy(members)
        assert all(m.received for m in members), {m.name: m.received for m in members}
        description = _stable_description(gw.bootstrap, group, 5)
        owned = _described_partitions(description)
        assert sorted(p for ps in owned for p in ps) == list(range(PARTITIONS)), owned
        protocol = description.partition_assignor
        generations_before_leave = len(_generations(gw.log(), group))

        # One member (kafka-python) leaves: the other four take over its partitions.
        leaver = members[1]
        left_partitions = leaver.owned_now()
        leaver.close()
        left_at = time.monotonic()
        rest = [m for m in members if m is not leaver]
        second = values("b", 0, 3000)
        produce(gw.bootstrap, topic, second)
        assert wait_until(lambda: cover(rest, PARTITIONS), 60), f"after the leave: {rest}"
        takeover_s = time.monotonic() - left_at
        assert wait_until(lambda: tally.have_all(second), 60), \
            f"missing {sum(1 for v in second if not tally.counts[v])} records produced after the leave"
        owned = _described_partitions(_stable_description(gw.bootstrap, group, 4))
        assert sorted(p for ps in owned for p in ps) == list(range(PARTITIONS)), owned
        assert tally.have_all(first)
        dup_after_leave = len(tally.duplicates())
        _healthy(rest)

        # Everyone stops; N new records; a new group of the same id reads exactly those N.
        _stop(rest)
        _healthy(members)
        # librdkafka's close() does not wait for the LeaveGroup answer: give the last one a moment
        assert wait_until(lambda: describe(gw.bootstrap, group).state == ConsumerGroupState.EMPTY, 10,
                          interval=0.2), describe(gw.bootstrap, group).state
        assert not describe(gw.bootstrap, group).members
        # Everything was consumed and committed: the committed offsets are the partitions' ends (lag 0).
        assert committed(gw.bootstrap, group, topic, PARTITIONS) == high_watermarks(gw.bootstrap, topic, PARTITIONS)
        third = values("c", 0, 1200)
        produce(gw.bootstrap, topic, third)
        tally2 = Tally()
        members2 = _mixed(gw.bootstrap, group, topic, tally2, "r2")
        rest = members2
        _start_mixed(members2)
        assert wait_until(lambda: tally2.have_all(third), 90), \
            f"missing {sum(1 for v in third if not tally2.counts[v])} of the {len(third)} new records"
        resume_s = time.monotonic() - min(m.subscribed_at or 1e18 for m in members2)
        assert wait_until(lambda: cover(members2, PARTITIONS), 30), members2
        time.sleep(2)
        got = tally2.snapshot()
        older = [v for v in got if v not in set(third)]
        assert not older, f"{len(older)} records before the committed offsets were read again: {older[:5]}"
        assert set(got.values()) == {1}, "a record of the restarted group delivered twice"
        _stop(members2)
        _healthy(members2)
    finally:
        _stop(members + rest, check=False)
    commit_failures = {m.name: m.commit_failures[:2] for m in members + members2 if m.commit_failures}
    _report("mixed", produce_30k_s=produce_s, join_5_s=join_s, consume_30k_s=consume_s,
            takeover_s=takeover_s, resume_s=resume_s, protocol=protocol, left=sorted(left_partitions),
            duplicates_after_leave=dup_after_leave, generations_before_leave=generations_before_leave,
            commit_failures=commit_failures)


# -- 2. static membership ------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["follower", "leader"])
def test_static_member_comes_back_without_rebalance(gateways, who):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("static"), unique("g")
    create_topic(gw.bootstrap, topic, PARTITIONS)
    tally = Tally()

    def member(i: int) -> ConfluentMember:
        return ConfluentMember(f"static{i}", gw.bootstrap, group, topic, tally, session_timeout_ms=30_000,
                               **{"group.instance.id": f"{group}-instance-{i}"})
    members = [member(i) for i in range(3)]
    replacement = None
    try:
        for m in members:
            m.start()
        assert wait_until(lambda: all(m.subscribed_at for m in members), 30)
        assert wait_until(lambda: cover(members, PARTITIONS), 30), members
        join_s = time.monotonic() - max(m.subscribed_at for m in members)
        _settle(members)
        first = values("a", 0, 600)
        produce(gw.bootstrap, topic, first)
        assert wait_until(lambda: tally.have_all(first), 30), \
            missing_report(gw.bootstrap, group, topic, PARTITIONS, tally, first, members, gw.log())

        generations = _generations(gw.log(), group)  # kop logs the leader's member id, <client.id>-<uuid>
        leader = next((i for i, m in enumerate(members) if generations and
                       generations[-1][3].startswith(m.name + "-")), None)
        if leader is None:
            if who == "leader":
                pytest.skip("kop's log no longer tells the group leader")
            leader = 0
        index = leader if who == "leader" else (leader + 1) % 3
        victim, others = members[index], [m for i, m in enumerate(members) if i != index]
        before = {m.name: (m.callback_counts(), m.owned_now()) for m in others}
        victim_partitions = victim.owned_now()
        victim.close()  # a static member: librdkafka sends no LeaveGroup
        time.sleep(2)
        assert {m.name: (m.callback_counts(), m.owned_now()) for m in others} == before, \
            "the others rebalanced when a static member closed"
        assert len(describe(gw.bootstrap, group).members) == 3, "the closed static member was removed"

        replacement = member(index)
        replacement.start()
        assert wait_until(lambda: replacement.owned_now(), 25), "the restarted static member got no partitions"
        back_s = time.monotonic() - replacement.subscribed_at
        assert replacement.owned_now() == victim_partitions, (replacement, victim_partitions)
        time.sleep(3)  # a rebalance of the others would show in their callbacks by now
        assert {m.name: (m.callback_counts(), m.owned_now()) for m in others} == before, \
            "the others rebalanced when the static member came back"
        assert replacement.callback_counts()[1:] == (0, 0), replacement.revokes

        second = values("b", 0, 600)
        produce(gw.bootstrap, topic, second)
        assert wait_until(lambda: tally.have_all(second), 30), \
            missing_report(gw.bootstrap, group, topic, PARTITIONS, tally, second, others + [replacement], gw.log())
        time.sleep(1)
        assert not tally.duplicates(), "the restarted member re-read records it had committed"
        assert tally.by_member[replacement.name], "the restarted member read nothing"
        _healthy(members + [replacement])
    finally:
        _stop(members + ([replacement] if replacement else []), check=False)
    _report(f"static/{who}", join_3_s=join_s, back_s=back_s, partitions=sorted(victim_partitions),
            generations=len(_generations(gw.log(), group)))


# -- 3. cooperative-sticky -----------------------------------------------------------------------

def test_cooperative_sticky_revokes_only_what_moves(gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("coop"), unique("g")
    create_topic(gw.bootstrap, topic, PARTITIONS)
    tally = Tally()
    members = [ConfluentMember(f"coop{i}", gw.bootstrap, group, topic, tally,
                               **{"partition.assignment.strategy": "cooperative-sticky"}) for i in range(3)]
    produced: list[bytes] = []
    stop_producing = threading.Event()

    def keep_producing() -> None:
        n = 0
        while not stop_producing.is_set():
            batch = values("m", n, 100)
            produce(gw.bootstrap, topic, batch)
            produced.extend(batch)
            n += len(batch)
            time.sleep(0.05)
    producer = threading.Thread(target=keep_producing, daemon=True)
    try:
        for m in members[:2]:
            m.start()
        assert wait_until(lambda: cover(members[:2], PARTITIONS), 30), members
        _settle(members[:2])
        producer.start()
        time.sleep(1)
        before = {m.name: m.owned_now() for m in members[:2]}
        revokes_before = {m.name: len(m.revokes) for m in members[:2]}

        members[2].start()
        assert wait_until(lambda: members[2].subscribed_at, 30)
        assert wait_until(lambda: cover(members, PARTITIONS) and all(len(m.owned_now()) == 2 for m in members),
                          30), members
        join_s = time.monotonic() - members[2].subscribed_at
        _settle(members)
        time.sleep(1)
        stop_producing.set()
        producer.join(60)
        assert len(produced) > 0
        assert wait_until(lambda: tally.have_all(produced), 30), \
            f"missing {sum(1 for v in produced if not tally.counts[v])} of {len(produced)} records"
        time.sleep(1)
        assert not tally.duplicates(), list(tally.duplicates().items())[:5]
        moved = set()
        for m in members[:2]:
            assert not m.losts, f"{m.name} lost partitions: {m.losts}"
            new_revokes = m.revokes[revokes_before[m.name]:]
            for cb in new_revokes:
                assert cb.partitions and cb.partitions < cb.owned_before, \
                    f"{m.name} was revoked {sorted(cb.partitions)} of {sorted(cb.owned_before)}: not incremental"
                moved |= cb.partitions
            assert m.owned_now() <= before[m.name], f"{m.name} got partitions of the other old member"
        assert moved == members[2].owned_now(), (moved, members[2])
        owned = _described_partitions(_stable_description(gw.bootstrap, group, 3))
        assert sorted(p for ps in owned for p in ps) == list(range(PARTITIONS)), owned
        _healthy(members)
    finally:
        stop_producing.set()
        _stop(members, check=False)
    _report("cooperative", join_3rd_s=join_s, produced=len(produced), moved=sorted(moved),
            generations=len(_generations(gw.log(), group)))


# -- 4. session timeout --------------------------------------------------------------------------

def test_killed_member_expires_after_session_timeout(gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("expire"), unique("g")
    create_topic(gw.bootstrap, topic, PARTITIONS)
    session_ms = 6000
    tally = Tally()
    lines: list[str] = []
    victim = subprocess.Popen([sys.executable, str(HERE / "group_client_victim.py"), gw.bootstrap, group, topic,
                               str(session_ms)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    reader = threading.Thread(target=lambda: lines.extend(iter(victim.stdout.readline, "")), daemon=True)
    reader.start()
    survivor = KafkaPythonMember("survivor", gw.bootstrap, group, topic, tally, session_timeout_ms=session_ms)

    def victim_owns() -> frozenset[int]:
        owned: frozenset[int] = frozenset()
        for line in list(lines):
            if line.startswith("ASSIGNED"):
                owned = frozenset(int(p) for p in line.split()[1].split(",")) if len(line.split()) > 1 \
                    else frozenset()
            elif line.startswith("REVOKED"):
                owned = frozenset()
        return owned
    try:
        assert wait_until(lambda: any(line.startswith("SUBSCRIBED") for line in lines), 30), lines
        survivor.start()
        assert wait_until(lambda: survivor.owned_now() and victim_owns()
                          and survivor.owned_now() | victim_owns() == frozenset(range(PARTITIONS))
                          and not survivor.owned_now() & victim_owns(), 40), (survivor, lines)
        _settle([survivor])
        assert len(_stable_description(gw.bootstrap, group, 2).members) == 2
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed = time.monotonic()
        assert wait_until(lambda: survivor.owned_now() == frozenset(range(PARTITIONS)), 30), survivor
        expired_s = time.monotonic() - killed
        # Not before the session timeout (less the heartbeat interval the victim may have just used),
        # and not much after it.
        assert session_ms / 1000 - 1.5 <= expired_s <= session_ms / 1000 + 6, expired_s
        records = values("a", 0, 600)
        produce(gw.bootstrap, topic, records)
        assert wait_until(lambda: tally.have_all(records), 30), \
            missing_report(gw.bootstrap, group, topic, PARTITIONS, tally, records, [survivor], gw.log())
        time.sleep(1)
        assert not tally.duplicates()
        assert len(_stable_description(gw.bootstrap, group, 1).members) == 1
        _healthy([survivor])
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
        _stop([survivor], check=False)
    expired_logged = bool(re.search(rf"group {re.escape(group)}: member victim-\S+ expired", gw.log()))
    _report("session-timeout", expired_after_s=expired_s, kop_logged_expiry=expired_logged)


# -- kop bugs the clients above ran into, reproduced on the wire ---------------------------------

def test_second_member_joining_during_rebalance_is_accepted(gateways):
    from kafka.protocol.consumer import JoinGroupRequest, JoinGroupResponse

    from support import RawClient
    gw = gateways()  # Kafka's default initial rebalance delay (3 s): the window of the race, made wide
    group = unique("g")

    def join(member_id: str) -> JoinGroupRequest:
        return JoinGroupRequest(group_id=group, session_timeout_ms=10_000, rebalance_timeout_ms=10_000,
                                member_id=member_id, group_instance_id=None, protocol_type="consumer",
                                protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range",
                                                                                     metadata=b"")], reason=None)
    with RawClient(gw.bootstrap) as a, RawClient(gw.bootstrap) as b:
        first = a.call(join(""), 5, JoinGroupResponse)
        assert first.error_code == 79  # MEMBER_ID_REQUIRED
        a.send(join(first.member_id), 5)  # parked: the group is now PreparingRebalance
        time.sleep(0.3)
        second = b.call(join(""), 5, JoinGroupResponse)
        assert second.error_code == 79
        joined = b.call(join(second.member_id), 5, JoinGroupResponse)
        assert joined.error_code == 0, f"JoinGroup answered error {joined.error_code}"


def _static_join(group: str, instance_id: str, metadata: bytes):
    from kafka.protocol.consumer import JoinGroupRequest
    return JoinGroupRequest(group_id=group, session_timeout_ms=10_000, rebalance_timeout_ms=10_000, member_id="",
                            group_instance_id=instance_id, protocol_type="consumer",
                            protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=metadata)],
                            reason=None)


def _static_member_in_stable_group(bootstrap: str, group: str):
    """One static member (instance "inst-a") that joined and synced: the group is Stable, generation 1."""
    from kafka.protocol.consumer import JoinGroupResponse, SyncGroupRequest, SyncGroupResponse

    from support import RawClient
    with RawClient(bootstrap) as client:
        first = client.call(_static_join(group, "inst-a", b"m1"), 5, JoinGroupResponse)
        assert first.error_code == 0 and first.leader == first.member_id, first
        sync = client.call(SyncGroupRequest(
            group_id=group, generation_id=first.generation_id, member_id=first.member_id,
            group_instance_id="inst-a", protocol_type="consumer", protocol_name="range",
            assignments=[SyncGroupRequest.SyncGroupRequestAssignment(member_id=first.member_id,
                                                                     assignment=b"assigned")]),
            5, SyncGroupResponse)
        assert sync.error_code == 0 and sync.assignment == b"assigned", sync
    return first


def test_restarted_static_leader_is_not_told_to_assign(gateways):
    from kafka.protocol.consumer import JoinGroupResponse

    from support import RawClient
    gw = gateways(env=FAST_GROUPS)
    group = unique("g")
    first = _static_member_in_stable_group(gw.bootstrap, group)
    with RawClient(gw.bootstrap) as restarted:
        again = restarted.call(_static_join(group, "inst-a", b"m1"), 5, JoinGroupResponse)
    assert again.error_code == 0 and again.generation_id == first.generation_id, again
    assert again.member_id != first.member_id
    assert again.leader == first.member_id and not again.members, \
        f"leader {again.leader!r} (new member id {again.member_id!r}), {len(again.members)} members"


def test_restarted_static_member_with_new_metadata_causes_no_rebalance(gateways):
    from kafka.protocol.consumer import JoinGroupResponse

    from support import RawClient
    gw = gateways(env=FAST_GROUPS)
    group = unique("g")
    first = _static_member_in_stable_group(gw.bootstrap, group)
    with RawClient(gw.bootstrap) as restarted:
        again = restarted.call(_static_join(group, "inst-a", b"m2"), 5, JoinGroupResponse)
    assert again.error_code == 0, again
    assert again.generation_id == first.generation_id, "kop rebalanced (a new generation)"
