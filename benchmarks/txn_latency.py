#!/usr/bin/env python3
"""Transaction commit latency: kop against an Apache Kafka 4.1.2 broker, in the same run.

    .venv/bin/python benchmarks/txn_latency.py [--transactions 300] [--records 10] [--entry-format pulsar]

Needs a Pulsar answering at 127.0.0.1:6650/8080 (`make pulsar-start`) and Kafka's jars
(`make kafka-tools`); the Kafka broker is started and stopped here (scripts/kafka-broker.sh, port
29192). One confluent-kafka transactional producer per system sends ``--records`` records over two
partitions per transaction, flushes, then commits; the figures are the ``commit_transaction()``
round trips (EndTxn: Prepare, markers, Complete on kop), and whole transactions (begin to commit
answered, AddPartitionsToTxn included), p50 / p99 / max in milliseconds. A warm-up of 20
transactions is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
KAFKA_PORT = 29192
WARM_UP = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answers on port {port}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(bootstrap: str, transactions: int, records: int) -> dict:
    topic = f"txn-bench-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(60)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{uuid.uuid4().hex[:6]}",
                         "linger.ms": 0})
    producer.init_transactions(60)
    commits, whole = [], []
    for n in range(transactions + WARM_UP):
        started = time.perf_counter()
        producer.begin_transaction()
        for i in range(records):
            producer.produce(topic, value=b"x" * 100, partition=i % 2)
        producer.flush(30)
        before_commit = time.perf_counter()
        producer.commit_transaction(30)
        done = time.perf_counter()
        if n >= WARM_UP:
            commits.append((done - before_commit) * 1000)
            whole.append((done - started) * 1000)
    out = {}
    for name, values in (("commit_ms", commits), ("transaction_ms", whole)):
        out[name] = {"p50": round(_percentile(values, 0.5), 2), "p99": round(_percentile(values, 0.99), 2),
                     "max": round(max(values), 2), "mean": round(statistics.mean(values), 2)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=300)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--entry-format", default="pulsar")
    args = parser.parse_args()
    results: dict = {"transactions": args.transactions, "records_per_transaction": args.records}
    port = _free_port()
    env = {**os.environ, "KOP_PULSAR_SYSTEM_NAMESPACE": f"public/__kop_bench_{uuid.uuid4().hex[:6]}"}
    kop = subprocess.Popen([sys.executable, "-m", "kop.cli", "serve", "--listen", f"127.0.0.1:{port}",
                            "--metrics-listen", "127.0.0.1:0", "--workers", "1", "--entry-format", args.entry_format],
                           cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kafka_env = {**os.environ, "KOP_KAFKA_PORT": str(KAFKA_PORT), "KOP_KAFKA_RUN_DIR": str(REPO / ".run" / "kafka-txn")}
    try:
        _wait_port(port)
        results[f"kop-{args.entry_format}"] = measure(f"127.0.0.1:{port}", args.transactions, args.records)
        print(f"kop ({args.entry_format}): {json.dumps(results[f'kop-{args.entry_format}'])}", flush=True)
    finally:
        kop.terminate()
        kop.wait(60)
    subprocess.run([str(REPO / "scripts" / "kafka-broker.sh"), "start"], env=kafka_env, check=True)
    try:
        subprocess.run([str(REPO / "scripts" / "kafka-broker.sh"), "wait"], env=kafka_env, check=True)
        results["kafka"] = measure(f"127.0.0.1:{KAFKA_PORT}", args.transactions, args.records)
        print(f"kafka: {json.dumps(results['kafka'])}", flush=True)
    finally:
        subprocess.run([str(REPO / "scripts" / "kafka-broker.sh"), "stop"], env=kafka_env, check=False)
    kop_p50 = results[f"kop-{args.entry_format}"]["commit_ms"]["p50"]
    results["commit_p50_ratio_kop_to_kafka"] = round(kop_p50 / results["kafka"]["commit_ms"]["p50"], 2)
    out = REPO / "benchmarks" / "results" / "txn_latency.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
