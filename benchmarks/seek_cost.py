#!/usr/bin/env python3
"""Cost of a seek with contiguous offsets (backend/entry_index.py): a Fetch at an arbitrary offset,
answered by a gateway that has never seen the partition (its index is empty: a binary search of
probes), and again once it has (the sparse index of entries it read).

    .venv/bin/python benchmarks/seek_cost.py [--ledgers 1,100] [--seeks 50]

Needs a Pulsar with the broker entry index answering at 127.0.0.1:6650/8080 (`make pulsar-start`).
For each ledger count, a one-partition topic gets 20,000 records of 100 B, one Kafka batch of 20
per entry (1,000 entries), spread over that many ledgers (the topic is unloaded between writes: an
unload closes the ledger). Then, for each of ``--seeks`` random offsets, a fresh confluent-kafka
consumer is assigned there and the time to its first record is taken: first through a gateway
started for the purpose (cold: every seek searches), then through the same gateway again (warm).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.procs import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ADMIN = "http://127.0.0.1:8080/admin/v2"
RECORDS, PER_BATCH = 20_000, 20


def _gateway() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "kop"), "serve", "--listen", f"127.0.0.1:{port}",
                             "--metrics-listen", "127.0.0.1:0", "--workers", "1"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "KOP_OFFSETS_MODE": "contiguous",
                                 "KOP_PULSAR_SYSTEM_NAMESPACE": f"public/__kop_seek_{uuid.uuid4().hex[:6]}"})
    import socket
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("kop did not start")


def _fill(bootstrap: str, topic: str, ledgers: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": PER_BATCH})
    per_ledger = RECORDS // ledgers
    for start in range(0, RECORDS, per_ledger):
        for i in range(start, min(start + per_ledger, RECORDS)):
            producer.produce(topic, b"%08d" % i + b"x" * 92, partition=0)
            if (i + 1) % PER_BATCH == 0:
                producer.flush(30)
        producer.flush(30)
        if ledgers > 1:
            req = urllib.request.Request(f"{ADMIN}/persistent/public/default/{topic}-partition-0/unload", method="PUT")
            urllib.request.urlopen(req, timeout=60).close()


def _seek(bootstrap: str, topic: str, offset: int) -> float:
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"seek-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    consumer.list_topics(topic, timeout=10)
    started = time.perf_counter()
    consumer.assign([TopicPartition(topic, 0, offset)])
    while True:
        message = consumer.poll(5)
        if message is not None and not message.error():
            elapsed = time.perf_counter() - started
            assert int(message.value()[:8]) == offset, (message.value()[:8], offset)
            consumer.close()
            return elapsed
        if time.perf_counter() - started > 60:
            raise RuntimeError(f"no record at offset {offset}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ledgers", default="1,100")
    ap.add_argument("--seeks", type=int, default=50)
    args = ap.parse_args()
    rows = []
    for ledgers in (int(x) for x in args.ledgers.split(",")):
        topic = f"seek-{ledgers}-{uuid.uuid4().hex[:6]}"
        writer, bootstrap = _gateway()
        try:
            _fill(bootstrap, topic, ledgers)
        finally:
            writer.terminate()
            writer.wait(30)
        stats = json.load(urllib.request.urlopen(f"{ADMIN}/persistent/public/default/{topic}-partition-0/internalStats"))
        offsets = [random.randrange(RECORDS) for _ in range(args.seeks)]
        reader, bootstrap = _gateway()
        try:
            cold = []
            for offset in offsets:  # every seek on a fresh partition index: restart between seeks
                cold.append(_seek(bootstrap, topic, offset))
                reader.terminate()
                reader.wait(30)
                reader, bootstrap = _gateway()
            _seek(bootstrap, topic, 0)
            _seek(bootstrap, topic, RECORDS - 1)  # the gateway has read the partition's ends
            for offset in range(0, RECORDS, 997):  # ... and some of the middle
                _seek(bootstrap, topic, offset)
            warm = [_seek(bootstrap, topic, offset) for offset in offsets]
        finally:
            reader.terminate()
            reader.wait(30)
        rows.append({"ledgers": len(stats["ledgers"]), "entries": RECORDS // PER_BATCH, "seeks": len(offsets),
                     "cold_p50_ms": _pct(cold, 0.5), "cold_p99_ms": _pct(cold, 0.99),
                     "warm_p50_ms": _pct(warm, 0.5), "warm_p99_ms": _pct(warm, 0.99),
                     "cold_mean_ms": round(statistics.mean(cold) * 1000, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'ledgers':>8} {'seeks':>6} {'cold p50/p99 ms':>18} {'warm p50/p99 ms':>18}")
    for r in rows:
        print(f"{r['ledgers']:>8} {r['seeks']:>6} {r['cold_p50_ms']:>8}/{r['cold_p99_ms']:<9} "
              f"{r['warm_p50_ms']:>8}/{r['warm_p99_ms']:<9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
