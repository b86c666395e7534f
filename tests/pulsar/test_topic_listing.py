"""DescribeTopicPartitions (75) and ListConfigResources (74) against the real Pulsar: raw round trips at
every served version, KIP-966 paging with a small partition limit and a cursor over several topics of
several partitions, unknown topics (answered, not created), and real clients: kafka-python's admin
(describe_topics, describe_topic_partitions, list_config_resources) and Kafka's own kafka-topics
--describe, whose Java AdminClient pages through DescribeTopicPartitions when a broker advertises it.

Each test serves a fresh namespace, in a fleet of its own, so "every topic" and "every broker" are
known exactly."""

from __future__ import annotations

import subprocess

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.protocol.admin import (DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
                                  ListConfigResourcesRequest, ListConfigResourcesResponse)
from kafka.protocol.metadata import MetadataRequest, MetadataResponse

from support import ROOT, RawClient, admin, drop_namespace, metric_samples, unique

pytestmark = pytest.mark.pulsar

PARTITIONS = {"alpha": 3, "bravo": 2, "charlie": 4}
UNKNOWN_TOPIC_OR_PARTITION, UNSUPPORTED_VERSION, INVALID_REQUEST = 3, 35, 42
DTP = DescribeTopicPartitionsRequest


@pytest.fixture
def served(gateways):
    """(gateway, its node id) serving a fresh namespace holding PARTITIONS, created through kop."""
    ns = f"public/{unique('kop-listing')}"
    status, body = admin(f"namespaces/{ns}", method="PUT")
    assert status in (200, 204), body
    try:
        gw = gateways("--namespace", ns.split("/")[1], env={"KOP_PULSAR_SYSTEM_NAMESPACE": ns + "-sys"})
        client = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
        try:
            client.create_topics([NewTopic(name, count, 1) for name, count in PARTITIONS.items()])
        finally:
            client.close()
        with RawClient(gw.bootstrap) as raw:
            node_id = raw.call(MetadataRequest(topics=[], allow_auto_topic_creation=False), 12,
                               MetadataResponse).brokers[0].node_id
        yield gw, node_id, ns
    finally:
        drop_namespace(ns)
        drop_namespace(ns + "-sys")


def describe(raw, names, limit=2000, cursor=None):
    request = DTP(topics=[DTP.TopicRequest(name=n) for n in names], response_partition_limit=limit,
                  cursor=None if cursor is None else DTP.Cursor(topic_name=cursor[0], partition_index=cursor[1]))
    response = raw.call(request, 0, DescribeTopicPartitionsResponse)
    next_cursor = response.next_cursor
    return response, ([(t.name, t.error_code, [p.partition_index for p in t.partitions]) for t in response.topics],
                      None if next_cursor is None else (next_cursor.topic_name, next_cursor.partition_index))


def test_describe_topic_partitions_answers_as_metadata(served):
    gw, node_id, _ = served
    with RawClient(gw.bootstrap) as raw:
        response, shape = describe(raw, [])  # every topic of the namespace
    assert shape == ([("alpha", 0, [0, 1, 2]), ("bravo", 0, [0, 1]), ("charlie", 0, [0, 1, 2, 3])], None)
    for topic in response.topics:
        assert topic.topic_id is None and topic.is_internal is False  # kafka-python reads the zero UUID as None
        assert topic.topic_authorized_operations == -2147483648
        for p in topic.partitions:
            assert (p.error_code, p.leader_id, p.leader_epoch) == (0, node_id, 0)
            assert (p.replica_nodes, p.isr_nodes, p.offline_replicas) == ([node_id], [node_id], [])
            assert p.eligible_leader_replicas == [] and p.last_known_elr == []


def test_describe_topic_partitions_pages_with_a_cursor(served):
    gw, _, _ = served
    pages, cursor = [], None
    with RawClient(gw.bootstrap) as raw:
        while True:
            _, (topics, cursor) = describe(raw, [], limit=2, cursor=cursor)
            pages.append((topics, cursor))
            if cursor is None:
                break
        assert pages == [
            ([("alpha", 0, [0, 1])], ("alpha", 2)),
            ([("alpha", 0, [2]), ("bravo", 0, [0])], ("bravo", 1)),
            ([("bravo", 0, [1]), ("charlie", 0, [0])], ("charlie", 1)),
            ([("charlie", 0, [1, 2])], ("charlie", 3)),
            ([("charlie", 0, [3])], None),
        ]
        # topics named in the request, one unknown: a limit used up exactly points at the next name
        names = ["charlie", "no-such-topic", "alpha"]
        assert describe(raw, names, limit=3)[1] == ([("alpha", 0, [0, 1, 2])], ("charlie", 0))
        assert describe(raw, names, limit=3, cursor=("charlie", 0))[1] == (
            [("charlie", 0, [0, 1, 2])], ("charlie", 3))
        assert describe(raw, names, limit=3, cursor=("charlie", 3))[1] == (
            [("charlie", 0, [3]), ("no-such-topic", UNKNOWN_TOPIC_OR_PARTITION, [])], None)
        # a cursor on a topic the request does not name, or at a negative partition, is refused whole
        assert describe(raw, ["alpha", "bravo"], cursor=("charlie", 0))[1] == (
            [("alpha", INVALID_REQUEST, []), ("bravo", INVALID_REQUEST, [])], None)
        assert describe(raw, ["alpha"], cursor=("alpha", -1))[1] == ([("alpha", INVALID_REQUEST, [])], None)


def test_unknown_topics_are_not_created(served):
    gw, _, ns = served  # kop auto-creates on Metadata (topics.auto_create); Kafka does not here, nor does kop
    with RawClient(gw.bootstrap) as raw:
        assert describe(raw, ["ghost"])[1] == ([("ghost", UNKNOWN_TOPIC_OR_PARTITION, [])], None)
        assert describe(raw, ["ghost"])[1] == ([("ghost", UNKNOWN_TOPIC_OR_PARTITION, [])], None)
    status, _ = admin(f"persistent/{ns}/ghost/partitions")
    assert status == 404


def list_resources(raw, version, types=()):
    response = raw.call(ListConfigResourcesRequest(resource_types=list(types)), version, ListConfigResourcesResponse)
    if version == 0:
        return response.error_code, [r.resource_name for r in response.config_resources]
    return response.error_code, [(r.resource_type, r.resource_name) for r in response.config_resources]


def test_list_config_resources_every_version(served):
    gw, node_id, _ = served
    topics = [(2, name) for name in sorted(PARTITIONS)]
    with RawClient(gw.bootstrap) as raw:
        assert list_resources(raw, 0) == (0, [])  # ListClientMetricsResources: kop has no client metrics
        assert list_resources(raw, 1) == (0, [(4, str(node_id)), *topics])
        assert list_resources(raw, 1, [2]) == (0, topics)
        assert list_resources(raw, 1, [4, 8]) == (0, [(4, str(node_id))])
        assert list_resources(raw, 1, [16, 32]) == (0, [])
        assert list_resources(raw, 1, [2, 1]) == (UNSUPPORTED_VERSION, [])


def test_kafka_python_admin(served):
    gw, node_id, _ = served
    client = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    try:
        by_metadata = {t["name"]: sorted(p["partition_index"] for p in t["partitions"])
                       for t in client.describe_topics(["alpha", "charlie"])}
        assert by_metadata == {"alpha": [0, 1, 2], "charlie": [0, 1, 2, 3]}

        whole = client.describe_topic_partitions(["charlie", "alpha"])
        assert whole["next_cursor"] is None
        assert [(t["name"], t["error_code"], [p["partition_index"] for p in t["partitions"]])
                for t in whole["topics"]] == [("alpha", 0, [0, 1, 2]), ("charlie", 0, [0, 1, 2, 3])]
        leaders = {p["leader_id"] for t in whole["topics"] for p in t["partitions"]}
        assert leaders == {node_id}

        first = client.describe_topic_partitions(["charlie"], response_partition_limit=1)
        assert first["next_cursor"] == {"topic_name": "charlie", "partition_index": 1}
        rest = client.describe_topic_partitions(["charlie"], response_partition_limit=10, cursor=first["next_cursor"])
        assert [p["partition_index"] for p in rest["topics"][0]["partitions"]] == [1, 2, 3]
        assert rest["next_cursor"] is None

        assert client.list_config_resources() == {"broker": [str(node_id)], "topic": sorted(PARTITIONS)}
        assert client.list_config_resources(["TOPIC"]) == {"topic": sorted(PARTITIONS)}
    finally:
        client.close()


def test_kafka_topics_describe_pages_through_describe_topic_partitions(served, kafka_tools):
    gw, node_id, _ = served
    proc = subprocess.run([str(ROOT / "scripts" / "kafka-tools.sh"), "run", "org.apache.kafka.tools.TopicCommand",
                           "--bootstrap-server", gw.bootstrap, "--describe", "--partition-size-limit-per-response",
                           "2"], capture_output=True, timeout=120)
    out = proc.stdout.decode() + proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, out
    for name, count in PARTITIONS.items():
        assert f"Topic: {name}\tPartitionCount: {count}\t" in out, out  # no TopicId: the zero UUID is not shown
        for p in range(count):
            assert f"Topic: {name}\tPartition: {p}\tLeader: {node_id}\tReplicas: {node_id}\tIsr: {node_id}" in out, out
    # the Java AdminClient used DescribeTopicPartitions, in pages of two partitions (9 partitions: 5 pages)
    answered = metric_samples(gw.metrics_port).get(
        ("kop_requests_total", (("api", "DescribeTopicPartitions"), ("error", "NONE"), ("version", "0"))), 0)
    assert answered >= 5
