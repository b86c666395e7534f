"""Kafka's own Java console producer and consumer (Apache Kafka 4.1.2's tools, fetched by
scripts/kafka-tools.sh) round-trip keyed lines with headers and tombstones through kop.

The console consumer is run with ``--partition N --offset earliest``: it then *assigns* the partition
and seeks to the beginning, needing no consumer group (``--from-beginning`` without ``--partition``
subscribes, which needs FindCoordinator, not served yet). The Java producer is idempotent by default
(InitProducerId) and runs with acks=all.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.partitioner.default import murmur2

from support import unique

pytestmark = pytest.mark.pulsar

PARTITIONS = 3
COUNT = 500
NULL_MARKER = "<TOMBSTONE>"  # the producer's marker for a null value
NULL_LITERAL = "<NULL>"  # what the consumer prints for one




def run_tool(tools: Path, main: str, *args: str, stdin: str | None = None, timeout: float = 120):
    proc = subprocess.run([str(tools), "run", main, *args], input=stdin.encode() if stdin is not None else None,
                          capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8", "replace")


def java_partition(key: bytes) -> int:
    """The Java producer's partition for a keyed record (BuiltInPartitioner.partitionForKey)."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def lines() -> list[tuple[str, str | None, list[tuple[str, str]]]]:
    out = []
    for i in range(COUNT):
        key = f"key-{i}"
        value = None if i % 50 == 7 else f"value {i} välue-ü ✓ " + "x" * (i % 13)
        headers = [("trace", str(i)), ("origin", "java-console")]
        out.append((key, value, headers))
    return out


def test_console_round_trip(kafka_tools, gateway):
    topic = unique("java")
    admin = KafkaAdminClient(bootstrap_servers=gateway.bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()

    sent = lines()
    stdin = "".join(
        ",".join(f"{hk}={hv}" for hk, hv in headers) + "|" + f"{key}:{NULL_MARKER if value is None else value}\n"
        for key, value, headers in sent)
    before_ms = int(time.time() * 1000)
    rc, out, err = run_tool(
        kafka_tools, "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", gateway.bootstrap,
        "--topic", topic, "--request-required-acks", "all", "--producer-property", "enable.idempotence=true",
        "--property", "parse.key=true", "--property", "key.separator=:",
        "--property", "parse.headers=true", "--property", "headers.delimiter=|",
        "--property", "headers.separator=,", "--property", "headers.key.separator==",
        "--property", f"null.marker={NULL_MARKER}", stdin=stdin)
    after_ms = int(time.time() * 1000)
    assert rc == 0, f"console producer exited with {rc}:\n{err}\n{gateway.log()[-3000:]}"
    assert "ERROR" not in err, err

    expected: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for key, value, headers in sent:
        hdrs = ",".join(f"{hk}:{hv}" for hk, hv in headers)
        expected[java_partition(key.encode())].append(f"{hdrs}\t{key}\t{NULL_LITERAL if value is None else value}")
    assert all(expected.values()), "the keys should spread over every partition"

    def consume(p: int):
        return run_tool(
            kafka_tools, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", gateway.bootstrap,
            "--topic", topic, "--partition", str(p), "--offset", "earliest",
            "--max-messages", str(len(expected[p])), "--timeout-ms", "30000",
            "--property", "print.key=true", "--property", "print.offset=true", "--property", "print.partition=true",
            "--property", "print.timestamp=true", "--property", "print.headers=true",
            "--property", f"null.literal={NULL_LITERAL}")

    with ThreadPoolExecutor(PARTITIONS) as pool:  # one consumer JVM per partition, side by side
        results = list(pool.map(consume, range(PARTITIONS)))
    total = 0
    for p, (rc, out, err) in enumerate(results):
        assert rc == 0, f"console consumer (partition {p}) exited with {rc}:\n{err}\n{gateway.log()[-3000:]}"
        assert f"Processed a total of {len(expected[p])} messages" in err, err
        got = out.splitlines()
        assert len(got) == len(expected[p]), f"partition {p}: got {len(got)} lines, sent {len(expected[p])}:\n{err}"
        offsets = []
        for line, want in zip(got, expected[p]):
            ts, part, offset, rest = line.split("\t", 3)
            assert ts.startswith("CreateTime:") and before_ms - 1000 <= int(ts.split(":")[1]) <= after_ms + 1000, line
            assert part == f"Partition:{p}", line
            offsets.append(int(offset.removeprefix("Offset:")))
            assert rest == want
        assert offsets == sorted(set(offsets)), f"partition {p}: offsets not strictly increasing: {offsets[:10]}"
        total += len(got)
    assert total == COUNT


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_console_compressed_round_trip(kafka_tools, gateway, codec):
    """The Java producer's own compressed batches (the reference codecs and lz4 framing), read back by
    the Java console consumer."""
    topic = unique(f"java-{codec}")
    admin = KafkaAdminClient(bootstrap_servers=gateway.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    count = 300
    sent = [f"key-{i}:{codec} value {i} " + "abc" * (i % 40) for i in range(count)]
    rc, out, err = run_tool(
        kafka_tools, "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", gateway.bootstrap,
        "--topic", topic, "--request-required-acks", "all", "--compression-codec", codec,
        "--property", "parse.key=true", "--property", "key.separator=:", stdin="".join(s + "\n" for s in sent))
    assert rc == 0 and "ERROR" not in err, f"console producer exited with {rc}:\n{err}\n{gateway.log()[-3000:]}"
    rc, out, err = run_tool(
        kafka_tools, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", gateway.bootstrap,
        "--topic", topic, "--partition", "0", "--offset", "earliest", "--max-messages", str(count),
        "--timeout-ms", "30000", "--property", "print.key=true", "--property", "key.separator=:")
    assert rc == 0, f"console consumer exited with {rc}:\n{err}\n{gateway.log()[-3000:]}"
    assert out.splitlines() == sent
