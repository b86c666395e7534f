"""Retention as Kafka has it, on a Pulsar whose retention is 0 (Pulsar's stock default).

A stock Pulsar deletes every closed ledger no durable subscription needs. Here a test namespace has
retention 0 (the namespace policy, since the test Pulsar's broker default is 7 days), ledgers are
rolled over (unload) and trimmed (POST .../trim): the records of topics kop created still read back
from earliest, while a topic created behind kop's back (pulsar-admin) loses them -- the mechanism
the test relies on is real. retention.ms also becomes the topic's message TTL, and a namespace that
keeps data by itself is left to its own policy.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from support import ROOT, admin, drop_namespace, unique

pytestmark = pytest.mark.pulsar

WEEK_MS = 7 * 24 * 3600 * 1000


@pytest.fixture
def namespace():
    """A fresh namespace in tenant public; ``namespace(retention)`` creates it with that policy."""
    made = []

    def make(retention: dict | None) -> str:
        ns = f"public/{unique('kop-ret')}"
        status, body = admin(f"namespaces/{ns}", method="PUT")
        assert status in (200, 204), body
        if retention is not None:
            status, body = admin(f"namespaces/{ns}/retention", method="POST", body=retention)
            assert status in (200, 204), body
        made.append(ns)
        return ns
    yield make
    for ns in made:
        drop_namespace(ns)
        drop_namespace(ns + "-sys")


def _gateway(gateways, ns: str):
    """A gateway serving ``ns``, in a fleet of its own: gateways sharing a system namespace form one
    Kafka cluster, and one serving another namespace (any other kop running here) must not be it."""
    return gateways("--namespace", ns.split("/")[1], env={"KOP_PULSAR_SYSTEM_NAMESPACE": ns + "-sys"})


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for v in values:
        producer.produce(topic, v, partition=0)
        producer.flush(30)  # one batch each: several entries per ledger
    assert producer.flush(30) == 0


def _from_earliest(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("no-commit"),
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, -2)])  # OFFSET_BEGINNING: no group offsets involved
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        for m in consumer.consume(100, 0.5):
            if m.error() is None:
                got.append(m.value())
    consumer.close()
    return got


def _roll_and_trim(ns: str, topic: str) -> None:
    """Close the partition's ledger (unload), open a new one, and let Pulsar delete what it may."""
    path = f"persistent/{ns}/{topic}-partition-0"
    before = [l["ledgerId"] for l in admin(f"{path}/internalStats")[1]["ledgers"]]
    assert admin(f"{path}/unload", method="PUT")[0] in (200, 204)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = admin(f"{path}/internalStats")[1]
        if isinstance(stats, dict) and stats.get("ledgers") and stats["ledgers"][-1]["ledgerId"] != before[-1]:
            break
        time.sleep(0.2)
    assert admin(f"{path}/trim", method="POST")[0] in (200, 204)


def _eventually(read, expected, timeout: float = 15):
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    assert value == expected
    return value


def test_unconsumed_data_survives_rollover_on_retention_zero(gateways, namespace):
    ns = namespace({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0})
    gw = _gateway(gateways, ns)
    created, auto, native = unique("created"), unique("auto"), unique("native")
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    client.create_topics([NewTopic(created, 1, 1)])[created].result(30)
    assert admin(f"persistent/{ns}/{native}/partitions", method="PUT", body=1)[0] in (200, 204)

    values = [f"v{i}".encode() for i in range(20)]
    for topic in (created, auto, native):  # `auto` is created by the producer's Metadata request
        _produce(gw.bootstrap, topic, values)
    for topic in (created, auto):  # Kafka's retention, as the topic's own Pulsar policies
        _eventually(lambda: admin(f"persistent/{ns}/{topic}/retention")[1],
                    {"retentionTimeInMinutes": WEEK_MS // 60_000, "retentionSizeInMB": -1})
        _eventually(lambda: admin(f"persistent/{ns}/{topic}/messageTTL")[1], WEEK_MS // 1000)
    assert admin(f"persistent/{ns}/{native}/retention")[1] is None

    for topic in (created, auto, native):
        _roll_and_trim(ns, topic)
        _produce(gw.bootstrap, topic, [b"after"])

    assert _from_earliest(gw.bootstrap, created, 21) == values + [b"after"]
    assert _from_earliest(gw.bootstrap, auto, 21) == values + [b"after"]
    # the control: the namespace's retention 0 deleted the closed ledger of the native topic
    lost = _from_earliest(gw.bootstrap, native, 21, timeout=8)
    assert lost == [b"after"], f"the native topic kept {len(lost)} records: the test's rollover did nothing"

    # DescribeConfigs: Kafka's default, not a topic override
    res = ConfigResource("TOPIC", auto)
    configs = client.describe_configs([res])[res].result(30)
    assert configs["retention.ms"].value == str(WEEK_MS) and configs["retention.ms"].is_default
    assert f"namespace {ns}: its retention policy is 0 min / 0 MB" in gw.log()


def test_retention_ms_is_the_message_ttl_too(gateways):
    gw = gateways()
    topic = unique("ttl")
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    client.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "120000"})])[topic].result(30)
    _eventually(lambda: admin(f"persistent/public/default/{topic}/retention")[1],
                {"retentionTimeInMinutes": 2, "retentionSizeInMB": -1})
    _eventually(lambda: admin(f"persistent/public/default/{topic}/messageTTL")[1], 120)
    res = ConfigResource("TOPIC", topic, incremental_configs=[
        ConfigEntry("retention.ms", "-1", incremental_operation=AlterConfigOpType.SET)])
    client.incremental_alter_configs([res])[res].result(30)
    _eventually(lambda: admin(f"persistent/public/default/{topic}/retention")[1],
                {"retentionTimeInMinutes": -1, "retentionSizeInMB": -1})
    _eventually(lambda: admin(f"persistent/public/default/{topic}/messageTTL")[1], 0)
    described = client.describe_configs([ConfigResource("TOPIC", topic)])
    configs = next(iter(described.values())).result(30)
    assert configs["retention.ms"].value == "-1" and not configs["retention.ms"].is_default


def test_a_namespace_that_keeps_data_keeps_its_own_policy(gateways, namespace):
    ns = namespace({"retentionTimeInMinutes": 60, "retentionSizeInMB": -1})
    gw = _gateway(gateways, ns)
    topic = unique("ns-kept")
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    time.sleep(1.5)  # topic policies apply asynchronously: none may appear
    assert admin(f"persistent/{ns}/{topic}/retention")[1] is None
    assert admin(f"persistent/{ns}/{topic}/messageTTL")[1] is None
    res = ConfigResource("TOPIC", topic)
    configs = client.describe_configs([res])[res].result(30)
    assert configs["retention.ms"].value == "3600000" and configs["retention.ms"].is_default
    assert f"namespace {ns}: its retention policy" not in gw.log()


def test_kop_check_names_a_namespace_that_drops_unconsumed_data(namespace):
    dropping = namespace({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0})
    keeping = namespace({"retentionTimeInMinutes": 10, "retentionSizeInMB": -1})
    for ns, warned in ((dropping, True), (keeping, False)):
        proc = subprocess.run([sys.executable, "-m", "kop.cli", "check", "--namespace", ns.split("/")[1]],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr  # advice, not a failure
        assert (f"WARNING: namespace {ns}: its retention policy is 0 min / 0 MB" in proc.stdout) is warned, proc.stdout
