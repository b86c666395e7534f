"""kop.protocol.messages: request headers, exact request decoding, response framing; the handler
registry and the ApiVersions answer built from it. Requests and responses are cross-checked against
kafka-python's own ``kafka.protocol`` encoders/decoders (a client's view of the wire)."""

from __future__ import annotations

import ast
import re
import struct
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.protocol.admin import (AlterConfigsRequest, CreatePartitionsRequest, DescribeClusterRequest,
                                  DescribeConfigsRequest, IncrementalAlterConfigsRequest)
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest
from kafka.protocol.admin import (CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
                                  DeleteTopicsResponse)
from kafka.protocol.consumer import FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse
from kafka.protocol.metadata import (ApiVersionsRequest, ApiVersionsResponse, MetadataRequest,
                                     MetadataResponse)
from kafka.protocol.producer import (InitProducerIdRequest, InitProducerIdResponse, ProduceRequest,
                                     ProduceResponse)

from kop.protocol import messages
from kop.protocol.errors import ErrorCode, ProtocolViolation
from kop.protocol.messages import (API_VERSIONS_KEY, CODECS, RequestHeader, decode_request, encode_response,
                                   is_flexible, parse_header, peek_header)
from kop.protocol.records import Record, build_batch

TOPIC_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
BATCH = bytes(build_batch([Record(0, 1_700_000_000_000, b"key", b"value", [("h", b"x")]),
                           Record(1, 1_700_000_000_001, None, None, [])]))


# --- request headers, built by hand ---------------------------------------------------------------------

def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def header_v1(api_key: int, version: int, correlation_id: int, client_id: bytes | None) -> bytes:
    head = struct.pack(">hhi", api_key, version, correlation_id)
    if client_id is None:
        return head + struct.pack(">h", -1)
    return head + struct.pack(">h", len(client_id)) + client_id


def tagged_fields(fields: list[tuple[int, bytes]]) -> bytes:
    out = uvarint(len(fields))
    for tag, data in fields:
        out += uvarint(tag) + uvarint(len(data)) + data
    return out


def header_v2(api_key, version, correlation_id, client_id, fields=()) -> bytes:
    return header_v1(api_key, version, correlation_id, client_id) + tagged_fields(list(fields))


def test_parse_header_v1():
    body = b"\x01\x02\x03"
    frame = header_v1(3, 4, 12345, b"my-client") + body
    header, pos = parse_header(frame, flexible=False)
    assert header == RequestHeader(3, 4, 12345, "my-client")
    assert frame[pos:] == body


def test_parse_header_v1_negative_values():
    frame = header_v1(3, 4, -7, b"")
    header, pos = parse_header(frame, flexible=False)
    assert header.correlation_id == -7
    assert header.client_id == ""
    assert pos == len(frame)


def test_parse_header_v1_null_client_id():
    frame = header_v1(0, 9, 1, None) + b"BODY"
    header, pos = parse_header(frame, flexible=False)
    assert header.client_id is None
    assert pos == 10
    assert frame[pos:] == b"BODY"


def test_parse_header_utf8_client_id():
    cid = "клиент-Ω-✓"
    frame = header_v1(3, 1, 1, cid.encode())
    header, pos = parse_header(frame, flexible=False)
    assert header.client_id == cid
    assert pos == len(frame)


def test_parse_header_v2_no_tags():
    frame = header_v2(3, 12, 99, b"cid") + b"rest"
    header, pos = parse_header(frame, flexible=True)
    assert header == RequestHeader(3, 12, 99, "cid")
    assert frame[pos:] == b"rest"


def test_parse_header_v2_skips_unknown_tagged_fields():
    fields = [(0, b"abc"), (7, b""), (300, b"\xff" * 200), (2**20, b"x" * 5)]
    frame = header_v2(1, 12, 42, b"client", fields) + b"\x00BODY"
    header, pos = parse_header(frame, flexible=True)
    assert header == RequestHeader(1, 12, 42, "client")
    assert frame[pos:] == b"\x00BODY"


def test_parse_header_v2_null_client_id_and_tags():
    frame = header_v2(18, 3, 5, None, [(1, b"zz")])
    header, pos = parse_header(frame, flexible=True)
    assert header.client_id is None
    assert pos == len(frame)


def test_parse_header_v2_tag_count_as_multibyte_varint():
    fields = [(i, bytes([i])) for i in range(130)]  # count 130 needs a 2-byte varint
    frame = header_v2(3, 9, 1, b"c", fields) + b"B"
    _, pos = parse_header(frame, flexible=True)
    assert frame[pos:] == b"B"


def test_peek_header():
    frame = header_v2(22, 4, -3, b"x", [(0, b"a")])
    assert peek_header(frame) == (22, 4, -3)


@pytest.mark.parametrize("flexible, frame", [
    (False, header_v1(3, 4, 1, b"client-id")),
    (False, header_v1(3, 4, 1, b"")),
    (True, header_v2(3, 9, 1, b"client-id")),
    (True, header_v2(3, 9, 1, None, [(0, b"abc"), (5, b"x" * 130)])),
    (True, header_v2(3, 9, 1, b"c", [(2**14, b"data")])),
])
def test_truncated_headers_raise(flexible, frame):
    parse_header(frame, flexible)  # the whole header parses
    # any cut after the fixed 8 bytes (a frame is never shorter: see framing.py) is a violation
    for cut in range(8, len(frame)):
        with pytest.raises(ProtocolViolation):
            parse_header(frame[:cut], flexible)


def test_client_id_length_past_frame_raises():
    frame = struct.pack(">hhih", 3, 4, 1, 50) + b"short"
    with pytest.raises(ProtocolViolation):
        parse_header(frame, flexible=False)


@pytest.mark.parametrize("length", [-2, -100, -32768])
def test_negative_client_id_length_other_than_minus_one_raises(length):
    frame = struct.pack(">hhih", 3, 4, 1, length) + b"x" * 40
    with pytest.raises(ProtocolViolation):
        parse_header(frame, flexible=False)


def test_tagged_field_size_past_frame_raises():
    frame = header_v1(3, 9, 1, b"c") + uvarint(1) + uvarint(0) + uvarint(10) + b"abc"
    with pytest.raises(ProtocolViolation):
        parse_header(frame, flexible=True)


def test_overlong_varint_raises():
    frame = header_v1(3, 9, 1, b"c") + b"\x80\x80\x80\x80\x80\x01"
    with pytest.raises(ProtocolViolation):
        parse_header(frame, flexible=True)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=80), st.booleans())
def test_parse_header_garbage_only_raises_protocol_violation(frame, flexible):
    try:
        header, pos = parse_header(frame, flexible)
    except ProtocolViolation:
        return
    assert 10 <= pos <= len(frame)
    assert (header.api_key, header.api_version, header.correlation_id) == peek_header(frame)


@settings(max_examples=200, deadline=None)
@given(st.integers(-2**15, 2**15 - 1), st.integers(-2**15, 2**15 - 1), st.integers(-2**31, 2**31 - 1),
       st.none() | st.text(max_size=40),
       st.lists(st.tuples(st.integers(0, 2**31 - 1), st.binary(max_size=40)), max_size=5),
       st.binary(max_size=20))
def test_parse_header_v2_random(api_key, version, correlation_id, client_id, fields, body):
    raw = None if client_id is None else client_id.encode()
    frame = header_v2(api_key, version, correlation_id, raw, fields) + body
    header, pos = parse_header(frame, flexible=True)
    assert header == RequestHeader(api_key, version, correlation_id, client_id)
    assert frame[pos:] == body


def reencode(obj, version: int) -> bytes:
    """kafka-python's encoding of a decoded message (decoders leave ``_header`` unset)."""
    try:
        obj._header
    except AttributeError:
        obj._header = None
    return bytes(obj.encode(version=version))


# --- request bodies: kafka-python encodes, kop decodes -----------------------------------------------------

def make_request(api_key: int):
    if api_key == 0:
        P = ProduceRequest
        return P(transactional_id=None, acks=-1, timeout_ms=30_000, topic_data=[P.TopicProduceData(
            name="orders", topic_id=TOPIC_ID,
            partition_data=[P.TopicProduceData.PartitionProduceData(index=2, records=BATCH)])])
    if api_key == 1:
        F = FetchRequest
        return F(replica_id=-1, max_wait_ms=500, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                 session_id=0, session_epoch=-1, topics=[F.FetchTopic(
                     topic="orders", topic_id=TOPIC_ID, partitions=[F.FetchTopic.FetchPartition(
                         partition=2, current_leader_epoch=-1, fetch_offset=2**40 + 3, last_fetched_epoch=-1,
                         log_start_offset=-1, partition_max_bytes=1 << 20)])],
                 forgotten_topics_data=[], rack_id="")
    if api_key == 2:
        L = ListOffsetsRequest
        return L(replica_id=-1, isolation_level=0, timeout_ms=1000, topics=[L.ListOffsetsTopic(
            name="orders", partitions=[L.ListOffsetsTopic.ListOffsetsPartition(
                partition_index=2, current_leader_epoch=-1, timestamp=-1, max_num_offsets=1)])])
    if api_key == 3:
        return MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="orders", topic_id=None)],
                               allow_auto_topic_creation=True)
    if api_key == 18:
        return ApiVersionsRequest(client_software_name="kop-tests", client_software_version="1.0.0")
    if api_key == 19:
        C = CreateTopicsRequest
        return C(topics=[C.CreatableTopic(name="orders", num_partitions=3, replication_factor=1, assignments=[],
                                          configs=[C.CreatableTopic.CreatableTopicConfig(name="retention.ms",
                                                                                         value="1000")])],
                 timeout_ms=1000, validate_only=False)
    if api_key == 20:
        D = DeleteTopicsRequest
        return D(topics=[D.DeleteTopicState(name="orders", topic_id=uuid.UUID(int=0))], topic_names=["orders"],
                 timeout_ms=1000)
    if api_key == 22:
        return InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000, producer_id=-1,
                                     producer_epoch=-1)
    return _group_request(api_key)


def _group_request(api_key: int):
    from kafka.protocol.admin import DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest
    from kafka.protocol.consumer import (HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
                                         OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
                                         SyncGroupRequest)
    from kafka.protocol.metadata import FindCoordinatorRequest
    if api_key == 8:
        O = OffsetCommitRequest
        return O(group_id="g", generation_id_or_member_epoch=3, member_id="m-1", group_instance_id="i-1",
                 retention_time_ms=-1, topics=[O.OffsetCommitRequestTopic(name="orders", topic_id=TOPIC_ID, partitions=[
                     O.OffsetCommitRequestTopic.OffsetCommitRequestPartition(
                         partition_index=2, committed_offset=2**40, committed_leader_epoch=-1, commit_timestamp=-1,
                         committed_metadata="meta")])])
    if api_key == 9:
        F = OffsetFetchRequest
        return F(group_id="g", topics=[F.OffsetFetchRequestTopic(name="orders", partition_indexes=[0, 2])],
                 groups=[F.OffsetFetchRequestGroup(group_id="g", member_id=None, member_epoch=-1, topics=[
                     F.OffsetFetchRequestGroup.OffsetFetchRequestTopics(name="orders", topic_id=TOPIC_ID,
                                                                        partition_indexes=[0, 2])])],
                 require_stable=False)
    if api_key == 10:
        return FindCoordinatorRequest(key="g", key_type=0, coordinator_keys=["g", "h"])
    if api_key == 11:
        J = JoinGroupRequest
        return J(group_id="g", session_timeout_ms=10_000, rebalance_timeout_ms=30_000, member_id="",
                 group_instance_id=None, protocol_type="consumer",
                 protocols=[J.JoinGroupRequestProtocol(name="range", metadata=b"\x00\x01")], reason=None)
    if api_key == 12:
        return HeartbeatRequest(group_id="g", generation_id=3, member_id="m-1", group_instance_id=None)
    if api_key == 13:
        L = LeaveGroupRequest
        return L(group_id="g", member_id="m-1", members=[L.MemberIdentity(member_id="m-1", group_instance_id=None,
                                                                          reason=None)])
    if api_key == 14:
        S = SyncGroupRequest
        return S(group_id="g", generation_id=3, member_id="m-1", group_instance_id=None, protocol_type="consumer",
                 protocol_name="range", assignments=[S.SyncGroupRequestAssignment(member_id="m-1", assignment=b"a")])
    if api_key == 15:
        return DescribeGroupsRequest(groups=["g"], include_authorized_operations=False)
    if api_key == 16:
        return ListGroupsRequest(states_filter=[], types_filter=[])
    if api_key == 42:
        return DeleteGroupsRequest(groups_names=["g"])
    if api_key == 17:
        return SaslHandshakeRequest(mechanism="PLAIN")
    if api_key == 36:
        return SaslAuthenticateRequest(auth_bytes=b"\x00acme\x00token:t")
    if api_key == 32:
        D = DescribeConfigsRequest
        return D(resources=[D.DescribeConfigsResource(resource_type=2, resource_name="orders",
                                                      configuration_keys=["retention.ms"])],
                 include_synonyms=True, include_documentation=True)
    if api_key == 33:
        A = AlterConfigsRequest
        return A(resources=[A.AlterConfigsResource(resource_type=2, resource_name="orders", configs=[
            A.AlterConfigsResource.AlterableConfig(name="retention.ms", value="60000")])], validate_only=False)
    if api_key == 37:
        C = CreatePartitionsRequest
        return C(topics=[C.CreatePartitionsTopic(name="orders", count=4, assignments=None)], timeout_ms=1000,
                 validate_only=False)
    if api_key == 44:
        I = IncrementalAlterConfigsRequest  # noqa: E741
        return I(resources=[I.AlterConfigsResource(resource_type=2, resource_name="orders", configs=[
            I.AlterConfigsResource.AlterableConfig(name="cleanup.policy", config_operation=2, value="compact")])],
            validate_only=True)
    if api_key == 60:
        return DescribeClusterRequest(include_cluster_authorized_operations=False, endpoint_type=1,
                                      include_fenced_brokers=False)
    if api_key in (29, 30, 31):
        return _acl_request(api_key)
    if api_key == 21:
        from kafka.protocol.admin import DeleteRecordsRequest
        R = DeleteRecordsRequest
        return R(topics=[R.DeleteRecordsTopic(name="orders", partitions=[
            R.DeleteRecordsTopic.DeleteRecordsPartition(partition_index=2, offset=-1)])], timeout_ms=1000)
    if api_key == 74:
        from kafka.protocol.admin import ListConfigResourcesRequest
        return ListConfigResourcesRequest(resource_types=[2, 4])  # v1+; v0 has no fields
    if api_key == 75:
        from kafka.protocol.admin import DescribeTopicPartitionsRequest
        R = DescribeTopicPartitionsRequest
        return R(topics=[R.TopicRequest(name="orders")], response_partition_limit=10,
                 cursor=R.Cursor(topic_name="orders", partition_index=2))
    if api_key == 47:
        D = OffsetDeleteRequest
        return D(group_id="g", topics=[D.OffsetDeleteRequestTopic(name="orders", partitions=[
            D.OffsetDeleteRequestTopic.OffsetDeleteRequestPartition(partition_index=2)])])
    if api_key in (24, 25, 26, 28):
        return _txn_request(api_key)
    if api_key in (61, 65, 66):
        from kafka.protocol.admin import DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest
        if api_key == 61:
            D = DescribeProducersRequest
            return D(topics=[D.TopicRequest(name="orders", partition_indexes=[0, 2])])
        if api_key == 65:
            return DescribeTransactionsRequest(transactional_ids=["t1", "t2"])
        return ListTransactionsRequest(state_filters=["Ongoing"], producer_id_filters=[7], duration_filter=1000,
                                       transactional_id_pattern="t.*")
    raise AssertionError(api_key)


def _txn_request(api_key: int):
    from kafka.protocol.producer import (AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest,
                                         TxnOffsetCommitRequest)
    if api_key == 24:
        A = AddPartitionsToTxnRequest
        topics = [A.AddPartitionsToTxnTopic(name="orders", partitions=[0, 2])]
        return A(v3_and_below_transactional_id="t1", v3_and_below_producer_id=7, v3_and_below_producer_epoch=1,
                 v3_and_below_topics=topics, transactions=[A.AddPartitionsToTxnTransaction(
                     transactional_id="t1", producer_id=7, producer_epoch=1, verify_only=False, topics=topics)])
    if api_key == 25:
        return AddOffsetsToTxnRequest(transactional_id="t1", producer_id=7, producer_epoch=1, group_id="g")
    if api_key == 26:
        return EndTxnRequest(transactional_id="t1", producer_id=7, producer_epoch=1, committed=True)
    T = TxnOffsetCommitRequest
    return T(transactional_id="t1", group_id="g", producer_id=7, producer_epoch=1, generation_id=3, member_id="m-1",
             group_instance_id=None, topics=[T.TxnOffsetCommitRequestTopic(name="orders", partitions=[
                 T.TxnOffsetCommitRequestTopic.TxnOffsetCommitRequestPartition(
                     partition_index=2, committed_offset=42, committed_leader_epoch=-1, committed_metadata="m")])])


def _acl_request(api_key: int):
    from kafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
    if api_key == 29:  # every ACL (resource type ANY = 1, pattern ANY = 1, operation/permission ANY = 1)
        return DescribeAclsRequest(resource_type_filter=1, resource_name_filter=None, pattern_type_filter=1,
                                   principal_filter=None, host_filter=None, operation=1, permission_type=1)
    if api_key == 30:
        C = CreateAclsRequest
        return C(creations=[C.AclCreation(resource_type=2, resource_name="orders", resource_pattern_type=3,
                                          principal="User:alice", host="*", operation=3, permission_type=3)])
    D = DeleteAclsRequest
    return D(filters=[D.DeleteAclsFilter(resource_type_filter=2, resource_name_filter="orders",
                                         pattern_type_filter=3, principal_filter=None, host_filter=None,
                                         operation=1, permission_type=1)])


def encode_request(api_key: int, version: int, correlation_id: int = 7, client_id: str | None = "client-1"):
    req = make_request(api_key)
    req.with_header(correlation_id=correlation_id, client_id=client_id)
    frame = bytes(req.encode(version=version, header=True))
    body = bytes(req.encode(version=version))
    return req, frame, body


LISTED = [
    (3, 0), (3, 4), (3, 9), (3, 12), (3, 13),
    (0, 3), (0, 9), (0, 12),
    (1, 4), (1, 11), (1, 12),
    (2, 1), (2, 7), (2, 10),
    (18, 0), (18, 3), (18, 4),
    (19, 2), (19, 5), (19, 7),
    (20, 1), (20, 6),
    (22, 0), (22, 4),
]


def _served_versions():
    from kop.handlers.registry import load_all
    return sorted({(k, v) for k, h in load_all().items() for v in range(h.min_version, h.max_version + 1)})


SERVED = _served_versions()
ALL_CASES = sorted(set(LISTED) | set(SERVED))


def _check_fields(api_key: int, version: int, decoded) -> None:
    if api_key == 0:
        assert decoded.acks == -1 and decoded.timeout_ms == 30_000
        part = decoded.topic_data[0].partition_data[0]
        assert part.index == 2
        assert bytes(part.records) == BATCH
        if version <= 12:
            assert decoded.topic_data[0].name == "orders"
    elif api_key == 1:
        part = decoded.topics[0].partitions[0]
        assert (part.partition, part.fetch_offset) == (2, 2**40 + 3)
        assert decoded.max_wait_ms == 500
        if version <= 12:
            assert decoded.topics[0].topic == "orders"
    elif api_key == 2:
        assert decoded.topics[0].name == "orders"
        assert decoded.topics[0].partitions[0].timestamp == -1
    elif api_key == 3:
        assert decoded.topics[0].name == "orders"
        if version >= 4:
            assert decoded.allow_auto_topic_creation is True
    elif api_key == 18:
        if version >= 3:
            assert decoded.client_software_name == "kop-tests"
    elif api_key == 19:
        topic = decoded.topics[0]
        assert (topic.name, topic.num_partitions, topic.replication_factor) == ("orders", 3, 1)
        assert topic.configs[0].value == "1000"
    elif api_key == 20:
        if version >= 6:
            assert decoded.topics[0].name == "orders"
        else:
            assert list(decoded.topic_names) == ["orders"]
    elif api_key == 22:
        assert decoded.transactional_id is None
        assert decoded.transaction_timeout_ms == 60_000


@pytest.mark.parametrize("api_key, version", ALL_CASES)
def test_decode_request_round_trip(api_key, version):
    req, frame, body = encode_request(api_key, version, correlation_id=4242, client_id="client-1")
    header, pos = parse_header(frame, is_flexible(api_key, version))
    assert header == RequestHeader(api_key, version, 4242, "client-1")
    assert frame[pos:] == body
    decoded = decode_request(api_key, version, frame, pos)
    assert decoded.API_VERSION == version
    # what kop decoded re-encodes to exactly the bytes the client sent
    assert reencode(decoded, version) == body
    _check_fields(api_key, version, decoded)


@pytest.mark.parametrize("api_key, version", [(3, 0), (3, 12), (18, 3), (0, 9)])
def test_decode_request_null_client_id(api_key, version):
    _, frame, body = encode_request(api_key, version, client_id=None)
    header, pos = parse_header(frame, is_flexible(api_key, version))
    assert header.client_id is None
    assert frame[pos:] == body
    decode_request(api_key, version, frame, pos)


@pytest.mark.parametrize("api_key, version", ALL_CASES)
def test_body_one_byte_short_raises_and_trailing_bytes_are_ignored(api_key, version):
    _, frame, _ = encode_request(api_key, version)
    _, pos = parse_header(frame, is_flexible(api_key, version))
    with pytest.raises(ProtocolViolation):
        decode_request(api_key, version, frame[:-1], pos)
    expected = decode_request(api_key, version, frame, pos)
    for padding in (b"\x00", b"\xff", b"\x01\x00\x00"):  # as Kafka: what follows a complete body is ignored
        assert reencode(decode_request(api_key, version, frame + padding, pos), version) == \
            reencode(expected, version)


@pytest.mark.parametrize("api_key, version", ALL_CASES)
def test_every_truncation_raises(api_key, version):
    _, frame, _ = encode_request(api_key, version)
    _, pos = parse_header(frame, is_flexible(api_key, version))
    for cut in range(pos, len(frame)):
        with pytest.raises(ProtocolViolation):
            decode_request(api_key, version, frame[:cut], pos)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL_CASES), st.binary(max_size=200))
def test_garbage_bodies_only_raise_protocol_violation(case, body):
    api_key, version = case
    frame = header_v1(api_key, version, 1, b"c") + body
    try:
        decode_request(api_key, version, frame, len(frame) - len(body))
    except ProtocolViolation:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_CASES), st.data())
def test_mutated_requests_only_raise_protocol_violation(case, data):
    api_key, version = case
    _, frame, _ = encode_request(api_key, version)
    _, pos = parse_header(frame, is_flexible(api_key, version))
    if pos == len(frame):  # an empty body (ApiVersions v0-2): nothing to mutate
        return
    mutated = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(pos, len(mutated) - 1))
        mutated[i] = data.draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01])) if data.draw(
            st.booleans()) else data.draw(st.integers(0, 255))
    try:
        decode_request(api_key, version, bytes(mutated), pos)
    except ProtocolViolation:
        pass


# --- responses ---------------------------------------------------------------------------------------------

def make_response(api_key: int):
    if api_key == 0:
        R = ProduceResponse
        return R(responses=[R.TopicProduceResponse(name="orders", topic_id=TOPIC_ID, partition_responses=[
            R.TopicProduceResponse.PartitionProduceResponse(index=2, error_code=0, base_offset=2**40,
                                                            log_append_time_ms=-1, log_start_offset=-1)])],
                 throttle_time_ms=0)
    if api_key == 3:
        R = MetadataResponse
        return R(throttle_time_ms=0, brokers=[R.MetadataResponseBroker(node_id=0, host="127.0.0.1", port=9092)],
                 cluster_id="kop-cluster", controller_id=0, topics=[R.MetadataResponseTopic(
                     error_code=0, name="orders", topic_id=TOPIC_ID, is_internal=False, partitions=[])])
    if api_key == 22:
        return InitProducerIdResponse(throttle_time_ms=0, error_code=0, producer_id=1234, producer_epoch=5)
    if api_key == API_VERSIONS_KEY:
        R = ApiVersionsResponse
        return R(error_code=0, api_keys=[R.ApiVersion(api_key=3, min_version=0, max_version=13)],
                 throttle_time_ms=0)
    return CODECS[api_key][1]()  # every field at its default


def _response_cases():
    cases = []
    for api_key, (_, resp) in CODECS.items():
        low, high = resp.valid_versions
        cases += [(api_key, v) for v in range(low, high + 1)]
    return cases


@pytest.mark.parametrize("api_key, version", _response_cases())
def test_encode_response_frame(api_key, version):
    resp_cls = CODECS[api_key][1]
    response = make_response(api_key)
    chunks = encode_response(api_key, version, 0x01020304, response)
    assert isinstance(chunks, list) and all(isinstance(c, (bytes, bytearray, memoryview)) for c in chunks)
    frame = b"".join(bytes(c) for c in chunks)
    (size,) = struct.unpack_from(">i", frame, 0)
    assert size == len(frame) - 4
    (correlation_id,) = struct.unpack_from(">i", frame, 4)
    assert correlation_id == 0x01020304
    flexible_header = api_key != API_VERSIONS_KEY and resp_cls.flexible_version_q(version)
    if flexible_header:
        assert frame[8] == 0  # response header v1: an empty tagged-field section
        body = frame[9:]
    else:
        body = frame[8:]
    decoded = resp_cls.decode(body, version=version)
    assert reencode(decoded, version) == body
    # the same frame, byte for byte, as kafka-python's own encoder (header included) would make
    # (encode_response set the response's version; kafka-python's version setter fails once a
    # response header is attached, so the version is not passed again)
    response.with_header(correlation_id=0x01020304)
    assert response.API_VERSION == version
    assert frame == bytes(response.encode(header=True, framed=True))
    # and a client parses header and body from it
    parsed = resp_cls.decode(frame, version=version, header=True, framed=True)
    assert parsed.header.correlation_id == 0x01020304


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_api_versions_response_always_header_v0(version):
    response = make_response(API_VERSIONS_KEY)
    frame = b"".join(bytes(c) for c in encode_response(API_VERSIONS_KEY, version, 77, response))
    assert struct.unpack_from(">ii", frame, 0) == (len(frame) - 4, 77)
    decoded = ApiVersionsResponse.decode(frame[8:], version=version)
    assert decoded.error_code == 0
    assert [(k.api_key, k.min_version, k.max_version) for k in decoded.api_keys] == [(3, 0, 13)]


def test_encode_response_fields_survive():
    frame = b"".join(bytes(c) for c in encode_response(22, 4, 9, make_response(22)))
    assert frame[8] == 0  # InitProducerId v4 is flexible: header v1
    decoded = InitProducerIdResponse.decode(frame[9:], version=4)
    assert (decoded.producer_id, decoded.producer_epoch, decoded.error_code) == (1234, 5, 0)
    frame = b"".join(bytes(c) for c in encode_response(0, 9, 9, make_response(0)))
    decoded = ProduceResponse.decode(frame[9:], version=9)
    part = decoded.responses[0].partition_responses[0]
    assert (decoded.responses[0].name, part.index, part.base_offset) == ("orders", 2, 2**40)


def test_is_flexible_matches_kafka_schemas():
    assert not is_flexible(3, 8) and is_flexible(3, 9)
    assert not is_flexible(0, 8) and is_flexible(0, 9)
    assert not is_flexible(1, 11) and is_flexible(1, 12)
    assert not is_flexible(18, 2) and is_flexible(18, 3)
    assert not is_flexible(22, 1) and is_flexible(22, 2)


def test_codecs_follow_the_registrations(registry):
    """One list of APIs: the codecs are those the handlers registered, no more, no fewer."""
    assert set(CODECS) == set(registry)
    for api_key, (req, resp) in CODECS.items():
        assert req.API_KEY == resp.API_KEY == api_key
        assert req.is_request() and not resp.is_request()


# --- the handler registry and ApiVersions -------------------------------------------------------------------

@pytest.fixture(scope="module")
def registry():
    from kop.handlers.registry import load_all
    return load_all()


def test_registry_serves_only_versions_the_codec_knows(registry):
    assert registry, "no handler registered"
    assert set(registry) <= set(CODECS)
    for api_key, handler in registry.items():
        assert handler.api_key == api_key
        req, resp = CODECS[api_key]
        low, high = req.valid_versions
        assert low <= handler.min_version <= handler.max_version <= high, (api_key, handler)
        rlow, rhigh = resp.valid_versions
        assert rlow <= handler.min_version and handler.max_version <= rhigh
        assert 0 <= handler.advertised_min <= handler.min_version
        assert handler.serves(handler.min_version) and handler.serves(handler.max_version)
        assert not handler.serves(handler.min_version - 1) and not handler.serves(handler.max_version + 1)


def _handler_modules() -> dict[int, ast.Module]:
    """API_KEY -> module source of every handler module in kop/handlers, read from the files."""
    out = {}
    for path in sorted((Path(messages.__file__).parents[1] / "handlers").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["API_KEY"]:
                out[node.value.value] = tree
    return out


def test_registry_has_the_documented_apis(registry):
    """Every handler module is discovered, registered, and its docstring names its API key (STYLE, habit 3)."""
    modules = _handler_modules()
    assert set(registry) == set(modules)
    for api_key, tree in modules.items():
        assert re.search(rf"\(key {api_key}\b", ast.get_docstring(tree)), api_key
    assert registry[0].advertised_min == 0  # Produce advertised from 0 (librdkafka compression)
    assert registry[18].min_version == 0


def _advertised(api_keys):
    return [(k.api_key, k.min_version, k.max_version) for k in api_keys]


def _expected(registry):
    return sorted((k, h.advertised_min, h.max_version) for k, h in registry.items())


async def test_api_versions_lists_exactly_the_registry(registry):
    from kop.handlers import api_versions
    response = await api_versions.serve(None, None)
    assert response.error_code == ErrorCode.NONE
    assert _advertised(response.api_keys) == _expected(registry)
    produce = [k for k in response.api_keys if k.api_key == 0]
    assert len(produce) == 1 and produce[0].min_version == 0
    # and it encodes at every version kop serves for ApiVersions, decodable by a client
    for version in range(registry[18].min_version, registry[18].max_version + 1):
        frame = b"".join(bytes(c) for c in encode_response(18, version, 5, response))
        decoded = ApiVersionsResponse.decode(frame[8:], version=version)
        assert _advertised(decoded.api_keys) == _expected(registry)


def test_api_versions_fallback_response(registry):
    from kop.handlers import api_versions
    chunks = api_versions.fallback_response(31337)
    frame = b"".join(bytes(c) for c in chunks)
    size, correlation_id = struct.unpack_from(">ii", frame, 0)
    assert size == len(frame) - 4
    assert correlation_id == 31337
    decoded = ApiVersionsResponse.decode(frame[8:], version=0)
    assert decoded.error_code == 35 == ErrorCode.UNSUPPORTED_VERSION
    assert _advertised(decoded.api_keys) == _expected(registry)
    # version 0 has no more fields: the body is consumed exactly
    assert reencode(decoded, 0) == frame[8:]


def test_messages_module_exports():
    assert messages.API_VERSIONS_KEY == 18


@pytest.mark.parametrize("api_key, version", ALL_CASES)
def test_every_error_response_encodes(api_key, version, registry):
    """Each handler's error_response must encode at every served version (a response that fails to
    encode closes the client's connection)."""
    request = make_request(api_key)
    response = registry[api_key].error_response(request, ErrorCode.UNKNOWN_SERVER_ERROR)
    if response is not None:
        assert b"".join(encode_response(api_key, version, 1, response))


@pytest.mark.parametrize("api_key, version, body, field", [
    (12, 0, b"\xff\xff" + b"\x00\x00\x00\x01" + b"\x00\x00", "GroupId"),  # Heartbeat: group_id null
    (15, 0, b"\xff\xff\xff\xff", "Groups"),  # DescribeGroups: groups array null
    (8, 2, b"\x00\x01g" + b"\x00\x00\x00\x01" + b"\x00\x00" + b"\x00" * 8 + b"\x00\x00\x00\x01" + b"\xff\xff"
     + b"\x00\x00\x00\x00",
     "Topics.Name"),  # OffsetCommit: a topic without a name
])
def test_null_where_the_schema_forbids_it_is_a_protocol_violation(api_key, version, body, field):
    from kop.protocol.errors import ProtocolViolation
    from kop.protocol.messages import decode_request
    with pytest.raises(ProtocolViolation, match=field):
        decode_request(api_key, version, body, 0)


def test_null_where_the_schema_allows_it_decodes():
    from kop.protocol.messages import decode_request
    request = decode_request(3, 1, b"\xff\xff\xff\xff", 0)  # Metadata v1: null topics = every topic
    assert request.topics is None
