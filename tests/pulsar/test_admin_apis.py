"""The admin APIs, honest: Kafka's own kafka-topics and kafka-configs (Java, from Maven Central) create,
describe, alter and delete topics, and every change shows in Pulsar's admin API; config names Kafka
does not know are refused by name (test_topic_configs.py has the rest of the config rules). Also CreatePartitions, AlterConfigs (legacy) and DescribeCluster with the
Python clients."""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KPConfigResource
from kafka.admin import ConfigResourceType

from kafka.protocol.admin import AlterConfigsRequest, AlterConfigsResponse

from support import ROOT, RawClient, admin, unique

pytestmark = pytest.mark.pulsar

TOOLS = ROOT / "scripts" / "kafka-tools.sh"
TOPICS = "org.apache.kafka.tools.TopicCommand"
CONFIGS = "kafka.admin.ConfigCommand"


def tool(main: str, gw, *args: str, ok: bool = True) -> str:
    proc = subprocess.run([str(TOOLS), "run", main, "--bootstrap-server", gw.bootstrap, *args],
                          capture_output=True, timeout=120)
    out = proc.stdout.decode() + proc.stderr.decode("utf-8", "replace")
    if ok:
        assert proc.returncode == 0, f"{main} {' '.join(args)}: exit {proc.returncode}\n{out}"
    else:
        assert proc.returncode != 0, f"{main} {' '.join(args)} should have failed:\n{out}"
    return out


def policy(topic: str, name: str):
    status, value = admin(f"persistent/public/default/{topic}/{name}")
    assert status in (200, 204), value
    return value


def eventually(read, expected, timeout: float = 15):
    """Pulsar applies topic policies asynchronously (about a second)."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    assert value == expected
    return value


def test_kafka_topics_and_kafka_configs_drive_pulsar_policies(gateways, kafka_tools):
    gw = gateways()
    topic = unique("admin-cli")
    tool(TOPICS, gw, "--create", "--topic", topic, "--partitions", "2", "--replication-factor", "1",
         "--config", "retention.ms=3600000", "--config", "max.message.bytes=2000000")
    assert admin(f"persistent/public/default/{topic}/partitions")[1]["partitions"] == 2
    eventually(lambda: policy(topic, "retention"), {"retentionTimeInMinutes": 60, "retentionSizeInMB": -1})
    eventually(lambda: policy(topic, "maxMessageSize"), 2000000)

    described = tool(TOPICS, gw, "--describe", "--topic", topic)
    assert "PartitionCount: 2" in described and "retention.ms=3600000" in described, described

    tool(TOPICS, gw, "--alter", "--topic", topic, "--partitions", "4")
    assert admin(f"persistent/public/default/{topic}/partitions")[1]["partitions"] == 4
    out = tool(TOPICS, gw, "--alter", "--topic", topic, "--partitions", "3", ok=False)
    assert "InvalidPartitionsException" in out or "must be higher" in out, out

    # Pulsar wants a retention size above the backlog quota (10 GiB on the standalone): said, not hidden.
    out = tool(CONFIGS, gw, "--entity-type", "topics", "--entity-name", topic, "--alter",
               "--add-config", "retention.bytes=104857600", ok=False)
    assert "InvalidConfigurationException" in out and "backlog quota" in out, out
    tool(CONFIGS, gw, "--entity-type", "topics", "--entity-name", topic, "--alter",
         "--add-config", "cleanup.policy=compact,retention.bytes=21474836480")
    eventually(lambda: policy(topic, "compactionThreshold"), 100 * 1024 * 1024)
    eventually(lambda: policy(topic, "retention"), {"retentionTimeInMinutes": 60, "retentionSizeInMB": 20480})
    described = tool(CONFIGS, gw, "--entity-type", "topics", "--entity-name", topic, "--describe")
    for expected in ("cleanup.policy=compact", "retention.bytes=21474836480", "retention.ms=3600000",
                     "max.message.bytes=2000000"):
        assert expected in described, described

    tool(CONFIGS, gw, "--entity-type", "topics", "--entity-name", topic, "--alter", "--delete-config",
         "max.message.bytes,retention.ms")
    eventually(lambda: policy(topic, "maxMessageSize"), None)
    # retention.ms returns to the namespace/broker default (7 days here); retention.bytes stays.
    eventually(lambda: policy(topic, "retention"), {"retentionTimeInMinutes": 10080, "retentionSizeInMB": 20480})

    # every Kafka topic config is accepted (stored); an unknown one is refused by name
    tool(CONFIGS, gw, "--entity-type", "topics", "--entity-name", topic, "--alter", "--add-config", "segment.ms=1000")
    assert "segment.ms=1000" in tool(CONFIGS, gw, "--entity-type", "topics", "--entity-name", topic, "--describe")
    out = tool(CONFIGS, gw, "--entity-type", "topics", "--entity-name", topic, "--alter",
               "--add-config", "segment.mss=1000", ok=False)
    assert "Unknown topic config name: segment.mss" in out, out

    bad = unique("admin-bad")
    out = tool(TOPICS, gw, "--create", "--topic", bad, "--partitions", "1", "--config", "compression.type=brotli",
               ok=False)
    assert "Invalid value brotli for configuration compression.type" in out, out
    assert admin(f"persistent/public/default/{bad}/partitions")[0] == 404, "a refused topic must not exist"

    tool(TOPICS, gw, "--delete", "--topic", topic)
    deadline = time.monotonic() + 15
    while admin(f"persistent/public/default/{topic}/partitions")[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert admin(f"persistent/public/default/{topic}/partitions")[0] == 404


def test_python_admin_clients(gateways):
    gw = gateways()
    topic = unique("admin-py")
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    from confluent_kafka.admin import NewTopic
    client.create_topics([NewTopic(topic, 1, config={"retention.ms": "120000"})])[topic].result(30)
    eventually(lambda: policy(topic, "retention")["retentionTimeInMinutes"], 2)

    # describe: the topic's own value is TOPIC_CONFIG, the rest defaults.
    res = ConfigResource("TOPIC", topic)
    configs = client.describe_configs([res])[res].result(30)
    assert configs["retention.ms"].value == "120000" and not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "delete" and configs["cleanup.policy"].is_default
    assert {"retention.ms", "retention.bytes", "max.message.bytes", "cleanup.policy", "segment.ms"} <= set(configs)

    # CreatePartitions: grow, not shrink; validate_only changes nothing.
    client.create_partitions([NewPartitions(topic, 3)], validate_only=True)[topic].result(30)
    assert admin(f"persistent/public/default/{topic}/partitions")[1]["partitions"] == 1
    client.create_partitions([NewPartitions(topic, 3)])[topic].result(30)
    assert admin(f"persistent/public/default/{topic}/partitions")[1]["partitions"] == 3
    with pytest.raises(Exception, match="must be higher"):
        client.create_partitions([NewPartitions(topic, 2)])[topic].result(30)

    # AlterConfigs (legacy) through kafka-python: it re-sends the other dynamic configs it described,
    # so retention.ms survives; max.message.bytes is set.
    kp = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    kp.alter_configs([KPConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": "3000000"})],
                     incremental=False)
    eventually(lambda: policy(topic, "maxMessageSize"), 3000000)
    eventually(lambda: policy(topic, "retention")["retentionTimeInMinutes"], 2)
    # The raw request: what it does not list returns to its default, as in Kafka.
    A = AlterConfigsRequest
    with RawClient(gw.bootstrap) as raw:
        resp = raw.call(A(resources=[A.AlterConfigsResource(resource_type=2, resource_name=topic, configs=[
            A.AlterConfigsResource.AlterableConfig(name="cleanup.policy", value="compact")])], validate_only=False),
            2, AlterConfigsResponse)
    assert [(r.error_code, r.error_message) for r in resp.responses] == [(0, None)]
    # retention returns to Kafka's default (topics.retention_ms), never to Pulsar's stock 0
    eventually(lambda: policy(topic, "retention"), {"retentionTimeInMinutes": 10080, "retentionSizeInMB": -1})
    eventually(lambda: policy(topic, "maxMessageSize"), None)
    eventually(lambda: policy(topic, "compactionThreshold"), 100 * 1024 * 1024)
    refused = kp.alter_configs([KPConfigResource(ConfigResourceType.TOPIC, topic,
                                                 configs={"unclean.leader.election.enable": "maybe"})],
                               incremental=False)
    assert "InvalidConfigurationError" in repr(refused) or "INVALID_CONFIG" in repr(refused), refused
    # broker configs are static; their description is read-only.
    (node_id,) = client.list_topics(timeout=30).brokers  # the config request goes to that broker
    broker = ConfigResource("BROKER", str(node_id))
    described = client.describe_configs([broker])[broker].result(30)
    assert described["num.partitions"].value == "1" and described["num.partitions"].is_read_only
    kp.close()

    # DescribeCluster: this gateway, as Metadata says.
    cluster = client.describe_cluster().result(30)
    assert [(n.host, n.port) for n in cluster.nodes] == [("127.0.0.1", gw.port)]
    assert cluster.controller.id == cluster.nodes[0].id and cluster.cluster_id == "kop-cluster"
