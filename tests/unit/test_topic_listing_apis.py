"""DescribeTopicPartitions (75) and ListConfigResources (74) without Pulsar: their bytes, computed by hand
from Kafka's JSON schemas (a second reading of the wire besides kafka-python's codec, which kop uses),
and the handlers' answers over a fake namespace and fleet: KIP-966 pagination as Kafka's broker pages,
and the resource listing as Kafka 4.1's."""

from __future__ import annotations

import struct
import uuid
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.protocol.admin import (DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
                                  ListConfigResourcesRequest, ListConfigResourcesResponse)

from kop.backend.fleet import Node
from kop.handlers import describe_topic_partitions, list_config_resources
from kop.mapping.placement import place, topic_partition_key
from kop.protocol.errors import ErrorCode
from kop.protocol.messages import decode_request, encode_response

DTP = DescribeTopicPartitionsRequest
LCR = ListConfigResourcesResponse


def i32(n: int) -> bytes:
    return struct.pack(">i", n)


def compact(text: str) -> bytes:  # COMPACT_STRING: length + 1, as a one-byte uvarint here
    return bytes([len(text.encode()) + 1]) + text.encode()


# --- bytes, from the schema ------------------------------------------------------------------------------

def test_describe_topic_partitions_request_bytes():
    with_cursor = (b"\x02" + compact("t") + b"\x00"   # Topics: one TopicRequest {Name}, its tags
                   + i32(25)                            # ResponsePartitionLimit
                   + b"\x01" + compact("t") + i32(3) + b"\x00"   # Cursor: present, {TopicName, PartitionIndex}
                   + b"\x00")                           # the request's tagged fields
    request = decode_request(75, 0, with_cursor, 0)
    assert [t.name for t in request.topics] == ["t"] and request.response_partition_limit == 25
    assert (request.cursor.topic_name, request.cursor.partition_index) == ("t", 3)
    built = DTP(topics=[DTP.TopicRequest(name="t")], response_partition_limit=25,
                cursor=DTP.Cursor(topic_name="t", partition_index=3))
    assert bytes(built.encode(version=0)) == with_cursor

    no_cursor = b"\x01" + i32(2000) + b"\xff" + b"\x00"  # no topics (= all), a null cursor is -1
    request = decode_request(75, 0, no_cursor, 0)
    assert request.topics == [] and request.cursor is None and request.response_partition_limit == 2000


def test_describe_topic_partitions_response_bytes():
    R = DescribeTopicPartitionsResponse
    T = R.DescribeTopicPartitionsResponseTopic
    P = T.DescribeTopicPartitionsResponsePartition
    partition = P(error_code=0, partition_index=3, leader_id=7, leader_epoch=0, replica_nodes=[7], isr_nodes=[7],
                  eligible_leader_replicas=[], last_known_elr=[], offline_replicas=[])
    topic = T(error_code=0, name="t", topic_id=uuid.UUID(int=0), is_internal=False, partitions=[partition],
              topic_authorized_operations=-2147483648)
    response = R(throttle_time_ms=0, topics=[topic], next_cursor=R.Cursor(topic_name="t", partition_index=4))
    expected = (i32(0)                                   # ThrottleTimeMs
                + b"\x02"                                # Topics: one
                + b"\x00\x00" + compact("t") + bytes(16) + b"\x00"   # ErrorCode, Name, TopicId (zero), IsInternal
                + b"\x02"                                # Partitions: one
                + b"\x00\x00" + i32(3) + i32(7) + i32(0)  # ErrorCode, PartitionIndex, LeaderId, LeaderEpoch
                + b"\x02" + i32(7) + b"\x02" + i32(7)    # ReplicaNodes, IsrNodes
                + b"\x01" + b"\x01"                      # EligibleLeaderReplicas, LastKnownElr: empty, not null
                + b"\x01" + b"\x00"                      # OfflineReplicas: empty; the partition's tags
                + i32(-2147483648) + b"\x00"             # TopicAuthorizedOperations; the topic's tags
                + b"\x01" + compact("t") + i32(4) + b"\x00"   # NextCursor: present
                + b"\x00")                               # the response's tags
    frame = b"".join(bytes(c) for c in encode_response(75, 0, 9, response))
    assert frame == i32(len(frame) - 4) + i32(9) + b"\x00" + expected  # response header v1

    response = R(throttle_time_ms=0, topics=[], next_cursor=None)
    assert bytes(response.encode(version=0)) == i32(0) + b"\x01" + b"\xff" + b"\x00"


def test_list_config_resources_bytes():
    assert decode_request(74, 0, b"\x00", 0) is not None           # v0: no fields, only tags
    request = decode_request(74, 1, b"\x03\x02\x04\x00", 0)        # v1: ResourceTypes [2, 4] (int8)
    assert list(request.resource_types) == [2, 4]
    response = LCR(throttle_time_ms=0, error_code=0, config_resources=[
        LCR.ConfigResource(resource_name="1", resource_type=4), LCR.ConfigResource(resource_name="t", resource_type=2)])
    v1 = i32(0) + b"\x00\x00" + b"\x03" + compact("1") + b"\x04\x00" + compact("t") + b"\x02\x00" + b"\x00"
    assert bytes(response.encode(version=1)) == v1
    v0 = i32(0) + b"\x00\x00" + b"\x03" + compact("1") + b"\x00" + compact("t") + b"\x00" + b"\x00"  # no ResourceType
    assert bytes(response.encode(version=0)) == v0


# --- the handlers, over a fake namespace ------------------------------------------------------------------

class FakeBackend:
    def __init__(self, topics: dict[str, int]) -> None:
        self.topics = topics

    async def list_topics(self) -> dict[str, int]:
        return dict(self.topics)

    async def partition_count(self, topic: str, fresh: bool = False, max_age_s: float | None = None) -> int:
        return self.topics.get(topic, 0)


NODES = [Node(11, "127.0.0.1", 9092), Node(22, "127.0.0.1", 9093), Node(33, "127.0.0.1", 9094)]


def context(topics: dict[str, int], version: int = 0):
    return SimpleNamespace(backend=FakeBackend(topics), version=version, listener=None,
                           config=SimpleNamespace(topics=SimpleNamespace(auto_create=True, default_partitions=1)),
                           fleet=SimpleNamespace(nodes=lambda: list(NODES)))


def dtp(names, limit=2000, cursor=None):
    return DTP(topics=[DTP.TopicRequest(name=n) for n in names], response_partition_limit=limit,
               cursor=None if cursor is None else DTP.Cursor(topic_name=cursor[0], partition_index=cursor[1]))


async def describe(topics, names, limit=2000, cursor=None):
    return await describe_topic_partitions.serve(context(topics), dtp(names, limit, cursor))


def shape(response):
    """[(name, error, [partition indexes])], next cursor as a tuple or None."""
    cursor = response.next_cursor
    return ([(t.name, t.error_code, [p.partition_index for p in t.partitions]) for t in response.topics],
            None if cursor is None else (cursor.topic_name, cursor.partition_index))


TOPICS = {"a": 3, "b": 2, "c": 4}


async def test_everything_fits():
    assert shape(await describe(TOPICS, ["c", "a", "b", "a"])) == (
        [("a", 0, [0, 1, 2]), ("b", 0, [0, 1]), ("c", 0, [0, 1, 2, 3])], None)
    assert shape(await describe(TOPICS, [])) == shape(await describe(TOPICS, ["a", "b", "c"]))


async def test_the_limit_cuts_a_topic_and_the_cursor_resumes_it():
    assert shape(await describe(TOPICS, ["a", "b", "c"], limit=4)) == ([("a", 0, [0, 1, 2]), ("b", 0, [0])], ("b", 1))
    assert shape(await describe(TOPICS, ["a", "b", "c"], limit=4, cursor=("b", 1))) == (
        [("b", 0, [1]), ("c", 0, [0, 1, 2])], ("c", 3))
    assert shape(await describe(TOPICS, ["a", "b", "c"], limit=4, cursor=("c", 3))) == ([("c", 0, [3])], None)


async def test_a_limit_used_up_exactly_points_at_the_next_topic():
    assert shape(await describe(TOPICS, ["a", "b", "c"], limit=3)) == ([("a", 0, [0, 1, 2])], ("b", 0))
    assert shape(await describe(TOPICS, ["a", "zz"], limit=3)) == ([("a", 0, [0, 1, 2])], ("zz", 0))
    assert shape(await describe(TOPICS, ["a"], limit=3)) == ([("a", 0, [0, 1, 2])], None)


async def test_limits_are_clamped_to_one_and_2000():
    assert shape(await describe(TOPICS, ["a"], limit=0)) == ([("a", 0, [0])], ("a", 1))
    assert shape(await describe(TOPICS, ["a"], limit=-5)) == ([("a", 0, [0])], ("a", 1))
    big = {"big": 2500}
    answer = await describe(big, ["big"], limit=10_000)
    assert len(answer.topics[0].partitions) == 2000 and shape(answer)[1] == ("big", 2000)


async def test_unknown_and_illegal_topics_use_none_of_the_limit():
    assert shape(await describe(TOPICS, ["a", "nope", "b", "bad name", "__hidden"], limit=4)) == (
        [("__hidden", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, []), ("a", 0, [0, 1, 2]), ("b", 0, [0])], ("b", 1))
    assert shape(await describe(TOPICS, ["bad name", "nope"])) == (
        [("bad name", ErrorCode.INVALID_TOPIC_EXCEPTION, []), ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])],
        None)
    # all topics: the namespace's, and nothing about ones that are not there
    assert shape(await describe(TOPICS, [], cursor=("bb", 0))) == ([("c", 0, [0, 1, 2, 3])], None)


async def test_a_cursor_outside_the_request_or_negative_is_invalid():
    for names, cursor in ((["a", "b"], ("c", 0)), (["a", "b"], ("b", -1)), ([], ("a", -1))):
        answer = await describe(TOPICS, names, cursor=cursor)
        assert answer.next_cursor is None
        assert [(t.name, t.error_code, t.partitions) for t in answer.topics] == [
            (n, ErrorCode.INVALID_REQUEST, []) for n in names]


async def test_a_cursor_past_the_last_partition_answers_the_topic_empty():
    assert shape(await describe(TOPICS, ["b", "c"], limit=2, cursor=("b", 9))) == ([("b", 0, []), ("c", 0, [0, 1])],
                                                                                 ("c", 2))


async def test_partitions_as_metadata_places_them():
    answer = await describe(TOPICS, ["c"])
    topic = answer.topics[0]
    assert topic.topic_id == uuid.UUID(int=0) and topic.is_internal is False
    assert topic.topic_authorized_operations == -2147483648
    live = [n.node_id for n in NODES]
    for p in topic.partitions:
        leader = place(topic_partition_key("c", p.partition_index), live)
        assert (p.leader_id, p.leader_epoch, p.replica_nodes, p.isr_nodes) == (leader, 0, [leader], [leader])
        assert p.eligible_leader_replicas == [] and p.last_known_elr == [] and p.offline_replicas == []


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.integers(1, 7), max_size=6),
       st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "x"]), max_size=8), st.integers(1, 9))
async def test_paging_visits_every_partition_once_in_order(topics, names, limit):
    wanted = sorted(set(names)) if names else sorted(topics)
    expected = [(n, p) for n in wanted if n in topics for p in range(topics[n])]
    seen, cursor, pages = [], None, 0
    while True:
        answer = await describe(topics, names, limit=limit, cursor=cursor)
        page = [(t.name, p.partition_index) for t in answer.topics if t.error_code == 0 for p in t.partitions]
        assert len(page) <= limit
        seen += page
        cursor = shape(answer)[1]
        pages += 1
        if cursor is None:
            break
        assert pages < 100
    assert seen == expected


async def test_error_response_names_every_topic_asked_for():
    answer = describe_topic_partitions.error_response(dtp(["a", "b"]), ErrorCode.UNKNOWN_SERVER_ERROR)
    assert [(t.name, t.error_code) for t in answer.topics] == [("a", -1), ("b", -1)]


async def list_resources(version, types=()):
    return await list_config_resources.serve(context(TOPICS, version), ListConfigResourcesRequest(
        resource_types=list(types)))


def listed(response):
    return response.error_code, [(r.resource_type, r.resource_name) for r in response.config_resources]


async def test_list_config_resources_v0_lists_client_metrics_only():
    assert listed(await list_resources(0)) == (0, [])


async def test_list_config_resources_v1_lists_brokers_then_topics():
    everything = (0, [(4, "11"), (4, "22"), (4, "33"), (2, "a"), (2, "b"), (2, "c")])
    assert listed(await list_resources(1)) == everything
    assert listed(await list_resources(1, [2, 4, 8, 16, 32])) == everything
    assert listed(await list_resources(1, [2])) == (0, [(2, "a"), (2, "b"), (2, "c")])
    assert listed(await list_resources(1, [4, 4])) == (0, [(4, "11"), (4, "22"), (4, "33")])
    assert listed(await list_resources(1, [8, 16, 32])) == (0, [])


@pytest.mark.parametrize("types", [[1], [0], [2, 3], [64]])
async def test_list_config_resources_refuses_unknown_types_whole(types):
    assert listed(await list_resources(1, types)) == (ErrorCode.UNSUPPORTED_VERSION, [])
