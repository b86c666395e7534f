"""The error paths of kop's group coordinator, with raw requests (tests/support.py RawClient and
kafka-python's ``kafka.protocol`` classes), checked against what Apache Kafka's classic group
coordinator answers: MEMBER_ID_REQUIRED (KIP-394), session-timeout bounds, inconsistent protocols,
stale generations and unknown members on Heartbeat/SyncGroup/OffsetCommit/LeaveGroup, oversized
commit metadata, "simple" commits (generation -1), static membership fencing (KIP-345),
FindCoordinator (single and batched), DescribeGroups/DeleteGroups of unknown or non-empty groups.

The tests share one gateway and record every commit kop accepted and every one it refused
(:data:`LEDGER`). The last test restarts the gateway and checks that ``__offsets`` gives back
exactly the accepted commits and nothing of the refused ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.protocol.admin import (DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
                                  DescribeGroupsResponse)
from kafka.protocol.consumer import (ConsumerProtocolAssignment, ConsumerProtocolSubscription, HeartbeatRequest,
                                     HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
                                     LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
                                     OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse)
from kafka.protocol.metadata import FindCoordinatorRequest, FindCoordinatorResponse

from support import Gateway, RawClient, read_frame, unique

pytestmark = pytest.mark.pulsar

FAST_GROUPS = {"KOP_GROUPS_INITIAL_REBALANCE_DELAY_MS": "300"}
INITIAL_DELAY_S = 0.3
SESSION_MS = 60_000     # members must outlive the whole module (no heartbeats between tests)
REBALANCE_MS = 5_000    # but a rebalance that waits for a silent member should not take a minute

# Kafka error codes
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_METADATA_TOO_LARGE = 12
COORDINATOR_NOT_AVAILABLE = 15
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82


@dataclass
class Ledger:
    """What the gateway accepted (must survive a restart) and refused (must never show up)."""
    valid: dict[str, dict[tuple[str, int], tuple[int, str]]] = field(default_factory=dict)
    refused: dict[str, set[tuple[str, int, int]]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def accept(self, group: str, topic: str, partition: int, offset: int, metadata: str | None) -> None:
        self.valid.setdefault(group, {})[(topic, partition)] = (offset, metadata or "")
        self.deleted.discard(group)

    def refuse(self, group: str, topic: str, partition: int, offset: int) -> None:
        self.refused.setdefault(group, set()).add((topic, partition, offset))

    def delete(self, group: str) -> None:
        self.valid.pop(group, None)
        self.deleted.add(group)


LEDGER = Ledger()
_REFUSED_OFFSET = iter(range(900_000_000, 901_000_000))  # distinct offsets for every refused commit


@dataclass
class Env:
    gw: Gateway
    topic: str          # 2 partitions, a few records each
    offsets: dict[int, list[int]]  # partition -> offsets of the records produced


@pytest.fixture(scope="module")
def env(pulsar):
    gw = Gateway(env=FAST_GROUPS).start()
    topic = unique("gerr")
    admin = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap, acks="all", linger_ms=0)
    offsets: dict[int, list[int]] = {0: [], 1: []}
    for i in range(6):
        md = producer.send(topic, value=b"v%d" % i, partition=i % 2).get(30)
        offsets[md.partition].append(md.offset)
    producer.close()
    yield Env(gw, topic, offsets)
    gw.stop()


@pytest.fixture
def client(env):
    with RawClient(env.gw.bootstrap) as c:
        yield c


# -- request builders ----------------------------------------------------------------------------

def _subscription(topic: str) -> bytes:
    return bytes(ConsumerProtocolSubscription(version=0, topics=[topic], user_data=None).encode())


def _assignment(topic: str, partitions: list[int]) -> bytes:
    return bytes(ConsumerProtocolAssignment(version=0, assigned_partitions=[
        ConsumerProtocolAssignment.TopicPartition(topic=topic, partitions=partitions)], user_data=None).encode())


def join_request(group: str, topic: str, member_id: str = "", *, instance: str | None = None,
                 session_ms: int = SESSION_MS, protocol_type: str = "consumer", protocols: list[str] | None = None):
    return JoinGroupRequest(
        group_id=group, session_timeout_ms=session_ms, rebalance_timeout_ms=REBALANCE_MS, member_id=member_id,
        group_instance_id=instance, protocol_type=protocol_type, reason=None,
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name=name, metadata=_subscription(topic))
                   for name in (["range"] if protocols is None else protocols)])


def join(client: RawClient, group: str, topic: str, member_id: str = "", *, version: int = 5, **kwargs):
    return client.call(join_request(group, topic, member_id, **kwargs), version, JoinGroupResponse)


def join_answer(client: RawClient, version: int = 5):
    """The answer to a JoinGroup sent earlier with ``client.send`` (non-flexible versions only)."""
    assert version < 6
    frame = read_frame(client.sock, 30)
    assert frame is not None, "the gateway closed the connection"
    return JoinGroupResponse.decode(frame[4:], version=version)


def sync(client: RawClient, group: str, generation: int, member_id: str, assignments: dict[str, bytes] | None = None,
         *, instance: str | None = None, protocol_name: str | None = "range", version: int = 5):
    request = SyncGroupRequest(
        group_id=group, generation_id=generation, member_id=member_id, group_instance_id=instance,
        protocol_type="consumer", protocol_name=protocol_name,
        assignments=[SyncGroupRequest.SyncGroupRequestAssignment(member_id=m, assignment=a)
                     for m, a in (assignments or {}).items()])
    return client.call(request, version, SyncGroupResponse)


def heartbeat(client: RawClient, group: str, generation: int, member_id: str, *, instance: str | None = None,
              version: int = 4) -> int:
    request = HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                               group_instance_id=instance)
    return client.call(request, version, HeartbeatResponse).error_code


def commit(client: RawClient, group: str, parts: dict[tuple[str, int], tuple[int, str | None]], *,
           generation: int = -1, member_id: str = "", instance: str | None = None, version: int = 8,
           leader_epoch: int = -1) -> dict[tuple[str, int], int]:
    by_topic: dict[str, list] = {}
    for (topic, partition), (offset, metadata) in parts.items():
        by_topic.setdefault(topic, []).append(OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition(
            partition_index=partition, committed_offset=offset, committed_leader_epoch=leader_epoch,
            committed_metadata=metadata))
    request = OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=generation, member_id=member_id, group_instance_id=instance,
        retention_time_ms=-1, topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name=t, partitions=ps)
                                      for t, ps in by_topic.items()])
    resp = client.call(request, version, OffsetCommitResponse)
    return {(t.name, p.partition_index): p.error_code for t in resp.topics for p in t.partitions}


def commit_and_record(client: RawClient, group: str, parts: dict[tuple[str, int], tuple[int, str | None]],
                      **kwargs) -> dict[tuple[str, int], int]:
    """Commit, then note each partition in LEDGER as accepted (error 0) or refused."""
    errors = commit(client, group, parts, **kwargs)
    for key, error in errors.items():
        offset, metadata = parts[key]
        if error == NONE:
            LEDGER.accept(group, key[0], key[1], offset, metadata)
        else:
            LEDGER.refuse(group, key[0], key[1], offset)
    return errors


def fetch_offsets(client: RawClient, group: str, topics: dict[str, list[int]] | None, version: int
                  ) -> tuple[int, dict[tuple[str, int], tuple[int, int, str | None, int]]]:
    """OffsetFetch v1-7: (top-level error (0 for v1), {(topic, p): (offset, leader epoch, metadata, error)})."""
    request = OffsetFetchRequest(group_id=group, require_stable=False, topics=None if topics is None else [
        OffsetFetchRequest.OffsetFetchRequestTopic(name=t, partition_indexes=ps) for t, ps in topics.items()])
    resp = client.call(request, version, OffsetFetchResponse)
    rows = {(t.name, p.partition_index): (p.committed_offset, p.committed_leader_epoch, p.metadata, p.error_code)
            for t in resp.topics for p in t.partitions}
    return (resp.error_code if version >= 2 else NONE), rows


def fetch_offsets_v8(client: RawClient, groups: dict[str, dict[str, list[int]] | None], version: int = 8
                     ) -> dict[str, tuple[int, dict[tuple[str, int], tuple[int, int, str | None, int]]]]:
    request = OffsetFetchRequest(require_stable=False, groups=[
        OffsetFetchRequest.OffsetFetchRequestGroup(group_id=g, topics=None if ts is None else [
            OffsetFetchRequest.OffsetFetchRequestGroup.OffsetFetchRequestTopics(name=t, partition_indexes=ps)
            for t, ps in ts.items()]) for g, ts in groups.items()])
    resp = client.call(request, version, OffsetFetchResponse)
    return {g.group_id: (g.error_code, {(t.name, p.partition_index): (p.committed_offset, p.committed_leader_epoch,
                                                                      p.metadata, p.error_code)
                                        for t in g.topics for p in t.partitions}) for g in resp.groups}


def describe(client: RawClient, group: str, version: int = 5):
    request = DescribeGroupsRequest(groups=[group], include_authorized_operations=False)
    return client.call(request, version, DescribeGroupsResponse).groups[0]


def delete_groups(client: RawClient, groups: list[str], version: int = 2) -> dict[str, int]:
    resp = client.call(DeleteGroupsRequest(groups_names=groups), version, DeleteGroupsResponse)
    return {r.group_id: r.error_code for r in resp.results}


def stable_member(client: RawClient, group: str, topic: str, *, instance: str | None = None) -> tuple[str, int]:
    """A one-member Stable group: (member id, generation)."""
    first = join(client, group, topic, instance=instance)
    if instance is None:
        assert first.error_code == MEMBER_ID_REQUIRED, first
        first = join(client, group, topic, first.member_id)
    assert first.error_code == NONE and first.leader == first.member_id, first
    synced = sync(client, group, first.generation_id, first.member_id,
                  {first.member_id: _assignment(topic, [0, 1])}, instance=instance)
    assert synced.error_code == NONE, synced
    return first.member_id, first.generation_id


# -- JoinGroup ------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5, 7, 9])
def test_join_requires_member_id_then_completes_after_initial_delay(env, client, version):
    group = unique("g-join")
    first = join(client, group, env.topic, version=version)
    assert first.error_code == MEMBER_ID_REQUIRED and first.member_id, first
    assert first.generation_id == -1 and first.members == []
    start = time.monotonic()
    second = join(client, group, env.topic, first.member_id, version=version)
    waited = time.monotonic() - start
    assert second.error_code == NONE, second
    assert second.member_id == first.member_id and second.leader == first.member_id
    assert second.generation_id == 1 and second.protocol_name == "range"
    assert [m.member_id for m in second.members] == [first.member_id], "the leader gets the member list"
    assert second.members[0].metadata == _subscription(env.topic)
    assert waited >= INITIAL_DELAY_S - 0.05, f"answered after {waited:.3f} s: no initial rebalance delay"
    assert describe(client, group).group_state == "CompletingRebalance"
    synced = sync(client, group, 1, first.member_id, {first.member_id: _assignment(env.topic, [0, 1])},
                  version=min(version, 5))
    assert synced.error_code == NONE and synced.assignment == _assignment(env.topic, [0, 1])
    assert heartbeat(client, group, 1, first.member_id) == NONE
    assert describe(client, group).group_state == "Stable"


def test_join_before_v4_gets_a_member_id_at_once(env, client):
    group = unique("g-join3")
    resp = join(client, group, env.topic, version=3)
    assert resp.error_code == NONE and resp.member_id and resp.generation_id == 1, resp


@pytest.mark.parametrize("session_ms", [5999, 1, 1_800_001])
def test_session_timeout_out_of_bounds(env, client, session_ms):
    group = unique("g-session")
    resp = join(client, group, env.topic, session_ms=session_ms)
    assert resp.error_code == INVALID_SESSION_TIMEOUT, resp
    assert describe(client, group).group_state == "Dead", "the refused join created the group"
    assert join(client, group, env.topic, session_ms=6000).error_code == MEMBER_ID_REQUIRED


def test_inconsistent_protocols(env, client):
    group = unique("g-proto")
    member, _ = stable_member(client, group, env.topic)
    with RawClient(env.gw.bootstrap) as other:
        assert join(other, group, env.topic, protocol_type="connect").error_code == INCONSISTENT_GROUP_PROTOCOL
        assert join(other, group, env.topic, protocols=["roundrobin"]).error_code == INCONSISTENT_GROUP_PROTOCOL
        assert join(other, group, env.topic, protocols=[]).error_code == INCONSISTENT_GROUP_PROTOCOL
    # Neither refused join disturbed the group.
    assert describe(client, group).group_state == "Stable"
    assert heartbeat(client, group, 1, member) == NONE
    # A new group with no protocols at all is refused too.
    assert join(client, unique("g-proto"), env.topic, protocols=[]).error_code == INCONSISTENT_GROUP_PROTOCOL


def test_empty_protocol_type_is_inconsistent(env, client):
    assert join(client, unique("g-proto"), env.topic, protocol_type="").error_code == INCONSISTENT_GROUP_PROTOCOL


# -- Heartbeat, SyncGroup -------------------------------------------------------------------------

def test_heartbeat_errors(env, client):
    group = unique("g-hb")
    member, generation = stable_member(client, group, env.topic)
    assert heartbeat(client, group, generation, member) == NONE
    assert heartbeat(client, group, generation, "nobody-" + member) == UNKNOWN_MEMBER_ID
    assert heartbeat(client, group, generation, "") == UNKNOWN_MEMBER_ID
    assert heartbeat(client, group, generation - 1, member) == ILLEGAL_GENERATION
    assert heartbeat(client, group, generation + 1, member) == ILLEGAL_GENERATION
    for version in range(0, 5):
        assert heartbeat(client, group, generation, member, version=version) == NONE
        assert heartbeat(client, group, generation + 7, member, version=version) == ILLEGAL_GENERATION
    assert describe(client, group).group_state == "Stable"


def test_heartbeat_stale_generation_during_rebalance(env, client):
    group = unique("g-hb2")
    member, generation = stable_member(client, group, env.topic)
    with RawClient(env.gw.bootstrap) as other:
        other.send(join_request(group, env.topic, instance="newcomer"), 5)  # the group starts rebalancing
        time.sleep(0.2)
        assert describe(client, group).group_state == "PreparingRebalance"
        got = (heartbeat(client, group, generation, member), heartbeat(client, group, generation - 1, member))
        join(client, group, env.topic, member)  # let the rebalance complete before the connection goes
        join_answer(other)
    assert got == (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION), got


def test_sync_group_errors(env, client):
    group = unique("g-sync")
    first = join(client, group, env.topic)
    joined = join(client, group, env.topic, first.member_id)
    member, generation = joined.member_id, joined.generation_id
    assignments = {member: _assignment(env.topic, [0, 1])}
    assert sync(client, group, generation + 1, member, assignments).error_code == ILLEGAL_GENERATION
    assert sync(client, group, generation - 1, member, assignments).error_code == ILLEGAL_GENERATION
    assert sync(client, group, generation, "nobody", assignments).error_code == UNKNOWN_MEMBER_ID
    assert sync(client, unique("g-none"), generation, member, assignments).error_code == UNKNOWN_MEMBER_ID
    assert sync(client, group, generation, member, assignments,
                protocol_name="roundrobin").error_code == INCONSISTENT_GROUP_PROTOCOL
    assert describe(client, group).group_state == "CompletingRebalance", "a refused sync changed the state"
    ok = sync(client, group, generation, member, assignments)
    assert ok.error_code == NONE and ok.assignment == assignments[member]
    assert ok.protocol_type == "consumer" and ok.protocol_name == "range"
    # Once Stable, a stale generation is still refused and the right one answers the assignment again.
    assert sync(client, group, generation + 1, member, assignments).error_code == ILLEGAL_GENERATION
    assert sync(client, group, generation, member, {}).assignment == assignments[member]
    for version in range(0, 5):
        assert sync(client, group, generation + 3, member, {}, version=version).error_code == ILLEGAL_GENERATION


# -- OffsetCommit ---------------------------------------------------------------------------------

def test_offset_commit_errors(env, client):
    group = unique("g-commit")
    topic = env.topic
    member, generation = stable_member(client, group, topic)
    good0, good1 = env.offsets[0][1], env.offsets[1][2]

    errors = commit_and_record(client, group, {(topic, 0): (good0, "m0")}, generation=generation, member_id=member)
    assert errors == {(topic, 0): NONE}

    # Unknown topic / unknown partition: per partition, next to a valid partition in the same request.
    missing = unique("no-such-topic")
    parts = {(topic, 1): (good1, None), (topic, 2): (next(_REFUSED_OFFSET), None),
             (topic, 7): (next(_REFUSED_OFFSET), None), (missing, 0): (next(_REFUSED_OFFSET), None)}
    errors = commit_and_record(client, group, parts, generation=generation, member_id=member)
    assert errors == {(topic, 1): NONE, (topic, 2): UNKNOWN_TOPIC_OR_PARTITION,
                      (topic, 7): UNKNOWN_TOPIC_OR_PARTITION, (missing, 0): UNKNOWN_TOPIC_OR_PARTITION}, errors

    # Stale/future generation, unknown member: every partition of the request.
    both = lambda: {(topic, 0): (next(_REFUSED_OFFSET), "x"), (topic, 1): (next(_REFUSED_OFFSET), "x")}  # noqa: E731
    for gen in (generation - 1, generation + 1):
        errors = commit_and_record(client, group, both(), generation=gen, member_id=member)
        assert set(errors.values()) == {ILLEGAL_GENERATION}, errors
    errors = commit_and_record(client, group, both(), generation=generation, member_id="nobody")
    assert set(errors.values()) == {UNKNOWN_MEMBER_ID}, errors
    # A "simple" commit (generation -1, no member id) is refused while the group has members.
    errors = commit_and_record(client, group, both())
    assert set(errors.values()) == {UNKNOWN_MEMBER_ID}, errors
    # A group that does not exist: no member can be known.
    ghost = unique("g-ghost")
    errors = commit_and_record(client, ghost, both(), generation=1, member_id="nobody")
    assert set(errors.values()) == {UNKNOWN_MEMBER_ID}, errors

    # Metadata: up to 4096 bytes (offset.metadata.max.bytes) is fine, one more is refused.
    errors = commit_and_record(client, group, {(topic, 0): (env.offsets[0][2], "a" * 4096)},
                               generation=generation, member_id=member)
    assert errors == {(topic, 0): NONE}
    errors = commit_and_record(client, group, {(topic, 0): (next(_REFUSED_OFFSET), "b" * 4097),
                                               (topic, 1): (env.offsets[1][0], "small")},
                               generation=generation, member_id=member)
    assert errors == {(topic, 0): OFFSET_METADATA_TOO_LARGE, (topic, 1): NONE}, errors

    # Versions 2..9 of a valid member commit.
    for version in range(2, 10):
        offset = env.offsets[version % 2][version % 3]
        errors = commit_and_record(client, group, {(topic, version % 2): (offset, f"v{version}")},
                                   generation=generation, member_id=member, version=version)
        assert errors == {(topic, version % 2): NONE}, (version, errors)
        errors = commit_and_record(client, group, {(topic, 0): (next(_REFUSED_OFFSET), "")},
                                   generation=generation + 5, member_id=member, version=version)
        assert errors == {(topic, 0): ILLEGAL_GENERATION}, (version, errors)

    _, rows = fetch_offsets(client, group, None, 7)
    assert {k: (o, m) for k, (o, _e, m, _err) in rows.items()} == LEDGER.valid[group]
    _, rows = fetch_offsets(client, ghost, None, 7)
    assert rows == {}, "a refused commit created offsets"


def test_unknown_partition_error_precedes_group_error(env, client):
    group = unique("g-commit2")
    member, generation = stable_member(client, group, env.topic)
    parts = {(env.topic, 0): (next(_REFUSED_OFFSET), None), (env.topic, 9): (next(_REFUSED_OFFSET), None),
             (unique("no-such-topic"), 0): (next(_REFUSED_OFFSET), None)}
    errors = commit_and_record(client, group, parts, generation=generation + 1, member_id=member)
    assert list(errors.values()) == [ILLEGAL_GENERATION, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION], \
        errors


def test_commit_during_completing_rebalance(env, client):
    group = unique("g-completing")
    first = join(client, group, env.topic)
    joined = join(client, group, env.topic, first.member_id)
    errors = commit_and_record(client, group, {(env.topic, 0): (next(_REFUSED_OFFSET), None)},
                               generation=joined.generation_id, member_id=joined.member_id)
    assert errors == {(env.topic, 0): REBALANCE_IN_PROGRESS}, errors


def test_simple_commit_and_offset_fetch_all_versions(env, client):
    group, other = unique("g-simple"), unique("g-simple")
    topic = env.topic
    a, b = env.offsets[0][2], env.offsets[1][1]
    assert commit_and_record(client, group, {(topic, 0): (a, "meta-a")}, version=2) == {(topic, 0): NONE}
    assert commit_and_record(client, group, {(topic, 1): (b, "meta-b")}, version=9, leader_epoch=4) == \
        {(topic, 1): NONE}
    assert commit_and_record(client, other, {(topic, 1): (env.offsets[1][0], "o")}, version=5) == {(topic, 1): NONE}
    described = describe(client, group)
    assert described.group_state == "Empty" and described.members == [], described
    # A simple commit with a stale member id or a generation to an empty group: there is no such member.
    errors = commit_and_record(client, group, {(topic, 0): (next(_REFUSED_OFFSET), None)}, generation=1,
                               member_id="nobody")
    assert errors == {(topic, 0): UNKNOWN_MEMBER_ID}, errors

    want = {(topic, 0): (a, "meta-a"), (topic, 1): (b, "meta-b")}
    for version in range(1, 8):
        error, rows = fetch_offsets(client, group, {topic: [0, 1, 5]}, version)
        assert error == NONE
        assert all(err == NONE for *_, err in rows.values()), (version, rows)
        assert {k: (o, m) for k, (o, _e, m, _err) in rows.items() if k != (topic, 5)} == want, (version, rows)
        assert rows[(topic, 5)][0] == -1, (version, rows)
        if version >= 5:
            assert rows[(topic, 1)][1] == 4 and rows[(topic, 0)][1] == -1, (version, rows)
        if version >= 2:
            error, rows = fetch_offsets(client, group, None, version)
            assert error == NONE and {k: (o, m) for k, (o, _e, m, _err) in rows.items()} == want, (version, rows)
        error, rows = fetch_offsets(client, unique("g-unknown"), {topic: [0]}, version)
        assert error == NONE and rows[(topic, 0)][0] == -1, (version, rows)

    for version in (8, 9):
        unknown = unique("g-unknown")
        result = fetch_offsets_v8(client, {group: None, other: {topic: [0, 1]}, unknown: None}, version)
        assert set(result) == {group, other, unknown}
        assert result[group][0] == NONE and {k: (o, m) for k, (o, _e, m, _err) in result[group][1].items()} == want
        assert result[other][1][(topic, 1)][0] == env.offsets[1][0]
        assert result[other][1][(topic, 0)][0] == -1
        assert result[unknown] == (NONE, {}), result[unknown]


def test_null_commit_metadata_reads_back_empty(env, client):
    group, offset = unique("g-nullmeta"), env.offsets[0][0]
    assert commit_and_record(client, group, {(env.topic, 0): (offset, None)}) == {(env.topic, 0): NONE}
    for version in (1, 5, 7):
        _, rows = fetch_offsets(client, group, {env.topic: [0]}, version)
        assert rows[(env.topic, 0)][0] == offset and rows[(env.topic, 0)][2] == "", (version, rows)


# -- static membership (KIP-345) --------------------------------------------------------------------

def _static_group(client: RawClient, topic: str) -> tuple[str, str, str, int]:
    """A Stable group whose static member 'inst-1' was replaced once: (group, stale id, current id, gen)."""
    group = unique("g-static")
    old_id, generation = stable_member(client, group, topic, instance="inst-1")
    rejoined = join(client, group, topic, instance="inst-1")  # the instance restarted: no member id
    assert rejoined.error_code == NONE and rejoined.member_id != old_id, rejoined
    assert rejoined.generation_id == generation, "a static rejoin with the same metadata does not rebalance"
    return group, old_id, rejoined.member_id, generation


def test_static_member_replaced_keeps_generation(env, client):
    group, old_id, new_id, generation = _static_group(client, env.topic)
    assert heartbeat(client, group, generation, new_id, instance="inst-1") == NONE
    synced = sync(client, group, generation, new_id, {}, instance="inst-1")
    assert synced.error_code == NONE and synced.assignment == _assignment(env.topic, [0, 1]), synced
    errors = commit_and_record(client, group, {(env.topic, 0): (env.offsets[0][0], "static")},
                               generation=generation, member_id=new_id, instance="inst-1", version=7)
    assert errors == {(env.topic, 0): NONE}
    described = describe(client, group)
    assert described.group_state == "Stable"
    assert [(m.member_id, m.group_instance_id) for m in described.members] == [(new_id, "inst-1")]


def test_static_member_stale_join_is_fenced(env, client):
    group, old_id, _new_id, _generation = _static_group(client, env.topic)
    assert join(client, group, env.topic, old_id, instance="inst-1").error_code == FENCED_INSTANCE_ID


def test_static_member_stale_id_is_fenced_everywhere(env, client):
    group, old_id, _new_id, generation = _static_group(client, env.topic)
    got = {
        "heartbeat": heartbeat(client, group, generation, old_id, instance="inst-1"),
        "sync": sync(client, group, generation, old_id, {}, instance="inst-1").error_code,
        "commit": set(commit_and_record(client, group, {(env.topic, 1): (next(_REFUSED_OFFSET), None)},
                                        generation=generation, member_id=old_id, instance="inst-1",
                                        version=7).values()).pop(),
    }
    assert got == {"heartbeat": FENCED_INSTANCE_ID, "sync": FENCED_INSTANCE_ID, "commit": FENCED_INSTANCE_ID}, got


def test_static_member_instance_of_another_member_is_fenced(env, client):
    """A member id the group knows, presented with another member's group_instance_id: FENCED_INSTANCE_ID."""
    group = unique("g-static2")
    topic = env.topic
    with RawClient(env.gw.bootstrap) as c2:
        # Joined one after the other: the second join rebalances a Stable group, which waits for inst-a.
        a_id, generation = stable_member(client, group, topic, instance="inst-a")
        c2.send(join_request(group, topic, instance="inst-b"), 5)  # the group rebalances, waiting for inst-a
        time.sleep(0.2)
        assert heartbeat(client, group, generation, a_id, instance="inst-a") == REBALANCE_IN_PROGRESS
        a = join(client, group, topic, a_id, instance="inst-a")
        b = join_answer(c2)
        assert a.error_code == NONE and b.error_code == NONE and a.generation_id == b.generation_id == generation + 1
        assert a.leader == a_id and len(a.members) == 2 and b.members == [], (a, b)
        generation = a.generation_id
        assignments = {a_id: _assignment(topic, [0]), b.member_id: _assignment(topic, [1])}
        assert sync(client, group, generation, a_id, assignments, instance="inst-a").error_code == NONE
        assert sync(c2, group, generation, b.member_id, {}, instance="inst-b").assignment == assignments[b.member_id]
        # b's member id with a's instance id.
        assert join(c2, group, topic, b.member_id, instance="inst-a").error_code == FENCED_INSTANCE_ID
        assert heartbeat(c2, group, generation, b.member_id, instance="inst-a") == FENCED_INSTANCE_ID
        assert sync(c2, group, generation, b.member_id, {}, instance="inst-a").error_code == FENCED_INSTANCE_ID
        errors = commit_and_record(c2, group, {(topic, 1): (next(_REFUSED_OFFSET), None)}, generation=generation,
                                   member_id=b.member_id, instance="inst-a", version=7)
        assert errors == {(topic, 1): FENCED_INSTANCE_ID}, errors
        # LeaveGroup v3+: a's instance with b's member id is fenced too.
        resp = c2.call(LeaveGroupRequest(group_id=group, members=[LeaveGroupRequest.MemberIdentity(
            member_id=b.member_id, group_instance_id="inst-a", reason=None)]), 4, LeaveGroupResponse)
        assert [m.error_code for m in resp.members] == [FENCED_INSTANCE_ID], resp
        described = describe(client, group)
        assert described.group_state == "Stable" and len(described.members) == 2, described
        assert heartbeat(client, group, generation, a_id, instance="inst-a") == NONE
        assert heartbeat(c2, group, generation, b.member_id, instance="inst-b") == NONE


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_members_joining_together_share_a_generation(env, static):
    """A member joining while the group is already PreparingRebalance (here: within the initial delay) is
    part of that rebalance. (Regression: kop answered UNKNOWN_SERVER_ERROR, IllegalTransition
    'PreparingRebalance -> PreparingRebalance' from coordinator.join().)"""
    group = unique("g-together")
    with RawClient(env.gw.bootstrap) as c1, RawClient(env.gw.bootstrap) as c2:
        ids = ["", ""]
        if not static:  # KIP-394 first round trip
            ids = [join(c, group, env.topic).member_id for c in (c1, c2)]
        instances = ["inst-1", "inst-2"] if static else [None, None]
        c1.send(join_request(group, env.topic, ids[0], instance=instances[0]), 5)
        time.sleep(0.05)  # well within the 300 ms initial delay
        second = join(c2, group, env.topic, ids[1], instance=instances[1])
        first = join_answer(c1)
        assert (first.error_code, second.error_code) == (NONE, NONE), (first, second)
        assert first.generation_id == second.generation_id == 1
        leader = first if first.leader == first.member_id else second
        assert len(leader.members) == 2, leader


# -- LeaveGroup -------------------------------------------------------------------------------------

def test_leave_group_errors(env, client):
    group = unique("g-leave")
    member, _ = stable_member(client, group, env.topic)
    resp = client.call(LeaveGroupRequest(group_id=group, member_id="nobody"), 1, LeaveGroupResponse)
    assert resp.error_code == UNKNOWN_MEMBER_ID, resp
    resp = client.call(LeaveGroupRequest(group_id=group, members=[
        LeaveGroupRequest.MemberIdentity(member_id="nobody", group_instance_id=None, reason=None),
        LeaveGroupRequest.MemberIdentity(member_id="", group_instance_id="no-such-instance", reason=None)]),
        5, LeaveGroupResponse)
    assert resp.error_code == NONE and [m.error_code for m in resp.members] == [UNKNOWN_MEMBER_ID] * 2, resp
    assert describe(client, group).group_state == "Stable"
    resp = client.call(LeaveGroupRequest(group_id=group, member_id=member), 2, LeaveGroupResponse)
    assert resp.error_code == NONE
    assert describe(client, group).group_state == "Empty"
    assert heartbeat(client, group, 1, member) == UNKNOWN_MEMBER_ID


# -- FindCoordinator, DescribeGroups, DeleteGroups ---------------------------------------------------

def test_find_coordinator(env, client):
    group = unique("g-find")
    for version in range(0, 4):
        request = FindCoordinatorRequest(key=group, key_type=0)
        resp = client.call(request, version, FindCoordinatorResponse)
        assert resp.error_code == NONE, (version, resp)
        assert (resp.host, resp.port) == ("127.0.0.1", env.gw.port) and resp.node_id >= 0, (version, resp)
        if version >= 1:  # a transactional id (kop/txn): the same single gateway
            resp = client.call(FindCoordinatorRequest(key="txn-" + group, key_type=1), version,
                               FindCoordinatorResponse)
            assert resp.error_code == NONE and resp.port == env.gw.port, (version, resp)
            resp = client.call(FindCoordinatorRequest(key="share-" + group, key_type=2), version,
                               FindCoordinatorResponse)
            assert resp.error_code == COORDINATOR_NOT_AVAILABLE, (version, resp)  # share groups: not served
    for version in range(4, 7):
        keys = [group, group + "-2"]
        resp = client.call(FindCoordinatorRequest(key_type=0, coordinator_keys=keys), version, FindCoordinatorResponse)
        assert [c.key for c in resp.coordinators] == keys, (version, resp)
        for c in resp.coordinators:
            assert c.error_code == NONE and (c.host, c.port) == ("127.0.0.1", env.gw.port) and c.node_id >= 0, c
        resp = client.call(FindCoordinatorRequest(key_type=1, coordinator_keys=keys), version, FindCoordinatorResponse)
        assert [(c.key, c.error_code, c.port) for c in resp.coordinators] == [(k, NONE, env.gw.port) for k in keys]
        resp = client.call(FindCoordinatorRequest(key_type=2, coordinator_keys=keys), version, FindCoordinatorResponse)
        assert [(c.key, c.error_code) for c in resp.coordinators] == [(k, COORDINATOR_NOT_AVAILABLE) for k in keys]


@pytest.mark.parametrize("version", range(0, 6))
def test_describe_unknown_group_is_dead(env, client, version):
    described = describe(client, unique("g-unknown"), version)
    assert described.error_code == NONE and described.group_state == "Dead" and described.members == [], described


def test_delete_groups_errors(env, client):
    busy, empty, unknown = unique("g-busy"), unique("g-del"), unique("g-unknown")
    stable_member(client, busy, env.topic)
    assert commit_and_record(client, empty, {(env.topic, 0): (env.offsets[0][0], "bye")}) == {(env.topic, 0): NONE}
    assert delete_groups(client, [busy], version=0) == {busy: NON_EMPTY_GROUP}
    assert delete_groups(client, [unknown], version=1) == {unknown: GROUP_ID_NOT_FOUND}
    assert delete_groups(client, [busy, unknown, empty]) == {busy: NON_EMPTY_GROUP, unknown: GROUP_ID_NOT_FOUND,
                                                             empty: NONE}
    LEDGER.delete(empty)
    assert describe(client, busy).group_state == "Stable"
    assert describe(client, empty).group_state == "Dead"
    _, rows = fetch_offsets(client, empty, {env.topic: [0]}, 7)
    assert rows[(env.topic, 0)][0] == -1
    assert delete_groups(client, [empty]) == {empty: GROUP_ID_NOT_FOUND}


# -- __offsets after all of that ---------------------------------------------------------------------

def test_offsets_survive_restart_exactly(env, gateways):
    # Commits of this test alone, so that it checks something when run by itself too.
    with RawClient(env.gw.bootstrap) as client:
        group = unique("g-restart")
        member, generation = stable_member(client, group, env.topic)
        assert commit_and_record(client, group, {(env.topic, 0): (env.offsets[0][1], "kept")},
                                 generation=generation, member_id=member) == {(env.topic, 0): NONE}
        assert set(commit_and_record(client, group, {(env.topic, 1): (next(_REFUSED_OFFSET), "no")},
                                     generation=generation + 1, member_id=member).values()) == {ILLEGAL_GENERATION}
        groups = sorted(set(LEDGER.valid) | set(LEDGER.refused) | LEDGER.deleted)
        before = fetch_offsets_v8(client, {g: None for g in groups})
    env.gw.stop()
    gw = gateways(env=FAST_GROUPS)
    with RawClient(gw.bootstrap) as client:
        after = fetch_offsets_v8(client, {g: None for g in groups})
    assert after == before
    for g in groups:
        error, rows = after[g]
        assert error == NONE
        got = {k: (o, m or "") for k, (o, _e, m, _err) in rows.items()}
        assert got == LEDGER.valid.get(g, {}), f"group {g}: {got} != {LEDGER.valid.get(g, {})}"
        refused = {(t, p, o) for (t, p), (o, _m) in got.items()} & LEDGER.refused.get(g, set())
        assert not refused, f"group {g}: refused commits came back: {refused}"
    print(f"restart: {len(groups)} groups, {sum(len(v) for v in LEDGER.valid.values())} valid commits, "
          f"{sum(len(v) for v in LEDGER.refused.values())} refused ones checked")
