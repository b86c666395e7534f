"""Kafka's Java clients and tools with transactions through kop, both entry formats: Kafka's own
TransactionalMessageCopier (a consume-transform-produce loop: Java consumer, transactional Java
producer with sendOffsetsToTransaction, random aborts) copies a topic; the output read with
read_committed is exactly the input, read_uncommitted also shows the aborted copies; then
``kafka-transactions.sh`` lists and describes the transactional id and the partition's producers."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from support import unique

pytestmark = pytest.mark.pulsar

COUNT = 2000
COPIER = "org.apache.kafka.tools.TransactionalMessageCopier"
TRANSACTIONS = "org.apache.kafka.tools.TransactionsCommand"


def run_tool(tools: Path, main: str, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run([str(tools), "run", main, *args], capture_output=True, timeout=timeout)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, f"{main} {' '.join(args)}: exit {proc.returncode}\n{out}\n{proc.stderr.decode()[-3000:]}"
    return out


def read_values(bootstrap: str, topic: str, isolation: str, partitions: int = 2, quiet_s: float = 3.0) -> list[bytes]:
    """Every value of the topic, read until nothing came for ``quiet_s``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False,
                         "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values: list[bytes] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < quiet_s:
            for m in consumer.consume(500, 0.5):
                if not m.error():
                    values.append(m.value())
                    last = time.monotonic()
    finally:
        consumer.close()
    return values


def test_java_copier_with_random_aborts_and_the_transactions_tool(kafka_tools, gateway):
    source, sink, tid, group = unique("copy-in"), unique("copy-out"), unique("copier"), unique("copier-group")
    admin = AdminClient({"bootstrap.servers": gateway.bootstrap})
    for future in admin.create_topics([NewTopic(t, 2, 1) for t in (source, sink)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": gateway.bootstrap, "enable.idempotence": True})
    inputs = [f"record-{i}".encode() for i in range(COUNT)]
    for i, value in enumerate(inputs):
        producer.produce(source, value=value, partition=i % 2)
    assert producer.flush(60) == 0

    out = run_tool(kafka_tools, COPIER, "--input-topic", source, "--input-partition", "0", "--output-topic", sink,
                   "--broker-list", gateway.bootstrap, "--consumer-group", group, "--transaction-size", "50",
                   "--transactional-id", tid, "--enable-random-aborts", "--group-mode", "--use-group-metadata")
    progress = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert progress[-1]["stage"] == "ShutdownComplete" and progress[-1]["totalProcessed"] == COUNT, progress[-3:]

    committed = read_values(gateway.bootstrap, sink, "read_committed")
    assert sorted(committed) == sorted(inputs), "read_committed: every input record copied exactly once"
    everything = read_values(gateway.bootstrap, sink, "read_uncommitted")
    assert len(everything) > COUNT and set(everything) == set(inputs), \
        "read_uncommitted: the aborted copies are there too (random aborts)"

    listed = run_tool(kafka_tools, TRANSACTIONS, "--bootstrap-server", gateway.bootstrap, "list")
    assert any(line.split()[0] == tid and "CompleteCommit" in line for line in listed.splitlines()[1:]), listed
    described = run_tool(kafka_tools, TRANSACTIONS, "--bootstrap-server", gateway.bootstrap, "describe",
                         "--transactional-id", tid)
    row = described.splitlines()[1].split()
    assert row[1] == tid and row[4] == "CompleteCommit" and row[5] == "60000", described
    producers = run_tool(kafka_tools, TRANSACTIONS, "--bootstrap-server", gateway.bootstrap, "describe-producers",
                         "--topic", sink, "--partition", "0")
    assert row[2] in producers, f"the copier's producer id {row[2]} not among the partition's producers:\n{producers}"
