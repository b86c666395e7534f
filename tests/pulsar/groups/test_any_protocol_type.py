"""Groups of any protocol type: Kafka Connect's workers join with protocol type ``connect`` (their
assignor's metadata is Connect's own bytes), Kafka Streams' with ``consumer`` and its own assignor.
kop's coordinator must pass their protocols and assignments through untouched, as Kafka does, and
the cursor sync and the lag metric must work for a group whatever its type.

Raw requests (kafka-python's protocol classes), so the bytes are exactly what a test chooses: member
metadata and assignments that are not consumer-protocol structs, not even UTF-8.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.admin import (DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
                                  DescribeGroupsResponse, ListGroupsRequest, ListGroupsResponse)
from kafka.protocol.consumer import (HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
                                     LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest,
                                     OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
                                     SyncGroupRequest, SyncGroupResponse)

from support import RawClient, admin, metric_samples, unique

pytestmark = pytest.mark.pulsar

MEMBER_ID_REQUIRED, INCONSISTENT_GROUP_PROTOCOL, NON_EMPTY_GROUP = 79, 23, 68
PROTOCOLS = [("sessioned", b"\x00\x01\xff connect worker state \xfe"), ("default", b"\x00\x00")]


def _join(bootstrap: str, group: str, protocol_type: str = "connect", protocols=PROTOCOLS):
    """A complete JoinGroup v9 (with the MEMBER_ID_REQUIRED round trip); (client, response)."""
    J = JoinGroupRequest
    client = RawClient(bootstrap, timeout=60)

    def request(member_id: str):
        return J(group_id=group, session_timeout_ms=30000, rebalance_timeout_ms=20000, member_id=member_id,
                 group_instance_id=None, protocol_type=protocol_type, reason=None,
                 protocols=[J.JoinGroupRequestProtocol(name=n, metadata=m) for n, m in protocols])
    resp = client.call(request(""), 9, JoinGroupResponse)
    if resp.error_code == MEMBER_ID_REQUIRED:
        resp = client.call(request(resp.member_id), 9, JoinGroupResponse)
    return client, resp


def test_a_connect_protocol_group_rides_through_kop(gateways):
    gw = gateways(env={"KOP_METRICS_LAG_INTERVAL_S": "1",  # members joining within 3 s: one generation
                       "KOP_GROUPS_CURSOR_SYNC_INTERVAL_S": "0.2"})
    group, topic = unique("connect-cluster"), unique("connect-offsets")
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": gw.bootstrap})
    for i in range(10):  # one entry each: Pulsar's backlog then counts records whatever it counts
        producer.produce(topic, f"r{i}".encode(), partition=0)
        assert producer.flush(30) == 0

    joined: list = [None, None]

    def join(i: int) -> None:
        joined[i] = _join(gw.bootstrap, group)
    threads = [threading.Thread(target=join, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    (a, ja), (b, jb) = joined
    assert ja.error_code == jb.error_code == 0 and ja.generation_id == jb.generation_id
    assert ja.protocol_type == "connect" and ja.protocol_name == "sessioned"
    leader, follower = (a, ja), (b, jb)
    if jb.leader == jb.member_id:
        leader, follower = follower, leader
    # the leader sees every member's metadata byte for byte
    assert sorted(m.metadata for m in leader[1].members) == [PROTOCOLS[0][1]] * 2

    S = SyncGroupRequest
    assignments = {leader[1].member_id: b"\x01leader\xff", follower[1].member_id: b"\x02follower\x00"}

    def sync(client, member_id, give):
        return client.call(S(group_id=group, generation_id=ja.generation_id, member_id=member_id,
                             group_instance_id=None, protocol_type="connect", protocol_name="sessioned",
                             assignments=[S.SyncGroupRequestAssignment(member_id=m, assignment=v)
                                          for m, v in give.items()]), 5, SyncGroupResponse)
    got: dict = {}
    t = threading.Thread(target=lambda: got.setdefault("f", sync(follower[0], follower[1].member_id, {})))
    t.start()
    got["l"] = sync(leader[0], leader[1].member_id, assignments)
    t.join(60)
    assert (got["l"].error_code, got["l"].assignment) == (0, assignments[leader[1].member_id])
    assert (got["f"].error_code, got["f"].assignment) == (0, assignments[follower[1].member_id])
    assert got["l"].protocol_type == "connect" and got["l"].protocol_name == "sessioned"

    H = HeartbeatRequest
    for client, resp in (leader, follower):
        hb = client.call(H(group_id=group, generation_id=ja.generation_id, member_id=resp.member_id,
                           group_instance_id=None), 4, HeartbeatResponse)
        assert hb.error_code == 0

    # a consumer-protocol member cannot join a connect group
    intruder, refused = _join(gw.bootstrap, group, protocol_type="consumer", protocols=[("range", b"")])
    intruder.close()
    assert refused.error_code == INCONSISTENT_GROUP_PROTOCOL

    with RawClient(gw.bootstrap) as raw:
        described = raw.call(DescribeGroupsRequest(groups=[group], include_authorized_operations=False), 5,
                             DescribeGroupsResponse).groups[0]
        listed = raw.call(ListGroupsRequest(states_filter=[], types_filter=[]), 5, ListGroupsResponse).groups
    assert (described.group_state, described.protocol_type, described.protocol_data) == ("Stable", "connect", "sessioned")
    assert sorted(m.member_assignment for m in described.members) == sorted(assignments.values())
    assert [g.protocol_type for g in listed if g.group_id == group] == ["connect"]

    # commits of a connect group move its Pulsar subscription and feed the lag metric, as any group's
    O = OffsetCommitRequest
    commit = leader[0].call(O(group_id=group, generation_id_or_member_epoch=ja.generation_id,
                              member_id=leader[1].member_id, group_instance_id=None, retention_time_ms=-1,
                              topics=[O.OffsetCommitRequestTopic(name=topic, partitions=[
                                  O.OffsetCommitRequestTopic.OffsetCommitRequestPartition(
                                      partition_index=0, committed_offset=0, committed_leader_epoch=-1,
                                      commit_timestamp=-1, committed_metadata=None)])]), 8, OffsetCommitResponse)
    assert commit.topics[0].partitions[0].error_code == 0
    subscription = f"kafka-group-{group}"
    lag = ("kop_consumer_lag_messages", (("group", group), ("partition", "0"), ("topic", topic)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = admin(f"persistent/public/default/{topic}-partition-0/stats")[1]
        if subscription in stats.get("subscriptions", {}) and lag in metric_samples(gw.metrics_port):
            break
        time.sleep(0.3)
    assert stats["subscriptions"][subscription]["msgBacklog"] == 10
    assert metric_samples(gw.metrics_port)[lag] == 10

    # OffsetDelete while it has members: NON_EMPTY_GROUP (kop cannot tell what a connect member uses)
    D = OffsetDeleteRequest
    with RawClient(gw.bootstrap) as raw:
        deleted = raw.call(D(group_id=group, topics=[D.OffsetDeleteRequestTopic(name=topic, partitions=[
            D.OffsetDeleteRequestTopic.OffsetDeleteRequestPartition(partition_index=0)])]), 0, OffsetDeleteResponse)
    assert deleted.error_code == NON_EMPTY_GROUP

    L = LeaveGroupRequest
    for client, resp in (leader, follower):
        left = client.call(L(group_id=group, members=[L.MemberIdentity(member_id=resp.member_id, group_instance_id=None,
                                                                      reason=None)]), 5, LeaveGroupResponse)
        assert left.error_code == 0
        client.close()
    with RawClient(gw.bootstrap) as raw:
        gone = raw.call(DeleteGroupsRequest(groups_names=[group]), 2, DeleteGroupsResponse)
    assert [r.error_code for r in gone.results] == [0]
    deadline = time.monotonic() + 15
    while subscription in admin(f"persistent/public/default/{topic}-partition-0/stats")[1].get("subscriptions", {}):
        assert time.monotonic() < deadline, "DeleteGroups should delete the group's subscription"
        time.sleep(0.3)
