"""kill -9 of the gateway coordinating a transactional id, in a two-gateway fleet, while Kafka's
TransactionalMessageCopier (Java: consume, transform, produce, sendOffsetsToTransaction) copies a
topic through both gateways: the other gateway takes ``__transactions`` over (completing or
aborting what the dead one left open), the copier carries on (or is restarted, as Kafka's own
system tests restart it, and resumes from its committed offsets), and the output read with
read_committed is exactly the input: nothing missing, nothing twice."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.metadata import FindCoordinatorRequest, FindCoordinatorResponse

from support import RawClient, unique

pytestmark = pytest.mark.pulsar

COUNT = 6000
PARTITIONS = 2
COPIER = "org.apache.kafka.tools.TransactionalMessageCopier"


def _coordinator_port(gw, tid: str) -> int:
    with RawClient(gw.bootstrap) as client:
        for _ in range(60):
            resp = client.call(FindCoordinatorRequest(key=tid, key_type=1), 2, FindCoordinatorResponse)
            if resp.error_code == 0:
                return resp.port
            time.sleep(0.5)
    raise AssertionError(f"no coordinator for {tid}")


class Copier:
    """The Java copier as a process; its JSON progress lines are parsed as they come."""

    def __init__(self, tools, *args: str) -> None:
        self.proc = subprocess.Popen([str(tools), "run", COPIER, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.progress: list[dict] = []
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            if line.startswith("{"):
                try:
                    self.progress.append(json.loads(line))
                except ValueError:
                    pass

    def processed(self) -> int:
        return max((p.get("totalProcessed", 0) for p in self.progress), default=0)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


def _read_committed(bootstrap: str, topic: str) -> Counter[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("check"), "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got: Counter[bytes] = Counter()
    last = time.monotonic()
    try:
        while time.monotonic() - last < 5:
            for m in consumer.consume(1000, 0.5):
                if not m.error():
                    got[m.value()] += 1
                    last = time.monotonic()
    finally:
        consumer.close()
    return got


def test_copier_survives_a_kill9_of_its_transaction_coordinator(kafka_tools, gateways):
    fleet = {"KOP_CLUSTER_HANDOVER_DELAY_S": "1"}
    a, b = gateways("--entry-format", "pulsar", env=fleet), gateways("--entry-format", "pulsar", env=fleet)
    bootstrap = f"{a.bootstrap},{b.bootstrap}"
    source, sink, group = unique("eos-in"), unique("eos-out"), unique("eos-group")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in (source, sink)]).values():
        future.result(30)
    time.sleep(3)  # the fleet settles: each gateway holds its share of __offsets / __transactions
    tid = next(t for t in (unique("eos-tid") for _ in range(200)) if _coordinator_port(b, t) == a.port)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    inputs = [f"in-{i}".encode() for i in range(COUNT)]
    for i, value in enumerate(inputs):
        producer.produce(source, value=value, partition=i % PARTITIONS)
    assert producer.flush(60) == 0

    args = ("--input-topic", source, "--input-partition", "0", "--output-topic", sink, "--broker-list", bootstrap,
            "--consumer-group", group, "--transaction-size", "50", "--transactional-id", tid, "--group-mode",
            "--use-group-metadata")
    copier = Copier(kafka_tools, *args)
    deadline = time.monotonic() + 120
    while copier.processed() < COUNT // 4:
        assert copier.proc.poll() is None, "".join(copier.output[-40:])
        assert time.monotonic() < deadline, "the copier made no progress"
        time.sleep(0.1)
    killed_at = copier.processed()
    a.kill()  # the transaction coordinator, mid-stream
    runs = 1
    while True:
        code = copier.wait(300)
        last = copier.progress[-1] if copier.progress else {}
        if code == 0 and last.get("stage") == "ShutdownComplete" and last.get("remaining") == 0:
            break
        assert runs < 4, f"the copier failed {runs} times:\n{''.join(copier.output[-60:])}"
        copier = Copier(kafka_tools, *args)  # as Kafka's system tests do: resume from the committed offsets
        runs += 1
    got = _read_committed(b.bootstrap, sink)
    missing = set(inputs) - set(got)
    doubled = {v: n for v, n in got.items() if n > 1}
    print(f"\n[txn-failover] records={COUNT} killed_at={killed_at} copier_runs={runs} "
          f"read_committed={sum(got.values())} missing={len(missing)} doubled={len(doubled)}")
    assert not missing, f"{len(missing)} input records never committed, e.g. {sorted(missing)[:5]}"
    assert not doubled, f"{len(doubled)} records committed twice, e.g. {list(doubled.items())[:5]}"
    assert set(got) == set(inputs)
