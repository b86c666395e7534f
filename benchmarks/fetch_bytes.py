#!/usr/bin/env python3
"""Bytes a consumer fetches for data a producer sent compressed, ``pulsar`` entry format: this
checkout against another revision, on the same stored data.

    .venv/bin/python benchmarks/fetch_bytes.py --against 0d455bc [--records 20000]

Needs a Pulsar answering at 127.0.0.1:6650/8080 (`make pulsar-start`). For each Kafka codec, a
confluent-kafka producer writes the records (JSON-like values of ~200 B, ``linger.ms=50``) through
this checkout's gateway; then a confluent-kafka consumer reads them all back through this checkout's
gateway and through one run from a git worktree of the other revision, and each gateway's
``kop_fetched_bytes_total`` (record-batch bytes in its Fetch answers) is read from its /metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.procs import free_port  # noqa: E402

CODECS = ("gzip", "snappy", "lz4", "zstd")


class Gateway:
    def __init__(self, tree: Path) -> None:
        self.tree, self.port, self.metrics_port = tree, free_port(), free_port()
        self.namespace = f"public/__kop_fetchbytes_{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> "Gateway":
        args = [sys.executable, "-m", "kop.cli", "serve", "--listen", f"127.0.0.1:{self.port}",
                "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--entry-format", "pulsar"]
        help_text = subprocess.run(args[:3] + ["serve", "--help"], cwd=self.tree, capture_output=True, text=True,
                                   env={**os.environ, "PYTHONPATH": str(self.tree)}).stdout
        if "--workers" in help_text:
            args += ["--workers", "1"]
        self.proc = subprocess.Popen(args, cwd=self.tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONPATH": str(self.tree),
                                          "KOP_PULSAR_SYSTEM_NAMESPACE": self.namespace})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/ready", timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"the gateway from {self.tree} did not start") from None
                time.sleep(0.3)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(30)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def counter(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return sum(float(line.rsplit(" ", 1)[1]) for line in r.read().decode().splitlines()
                       if line.startswith(name + "{") or line.startswith(name + " "))


def produce(gateway: Gateway, topic: str, codec: str, records: int) -> None:
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": gateway.bootstrap, "compression.codec": codec, "linger.ms": 50,
                  "acks": "all"})
    for i in range(records):
        value = json.dumps({"id": i, "user": f"user-{i % 97}", "event": "page_view", "path": f"/catalog/{i % 13}",
                            "agent": "Mozilla/5.0 (X11; Linux x86_64)", "ok": True}).encode()
        while True:
            try:
                p.produce(topic, value, key=f"user-{i % 97}".encode())
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(120):
        raise RuntimeError("records not delivered")


def fetched_bytes(gateway: Gateway, topic: str, records: int) -> float:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    before = gateway.counter("kop_fetched_bytes_total")
    c = Consumer({"bootstrap.servers": gateway.bootstrap, "group.id": f"fb-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got, deadline = 0, time.monotonic() + 120
    while got < records and time.monotonic() < deadline:
        got += sum(1 for m in c.consume(1000, timeout=1.0) if not m.error())
    c.close()
    if got < records:
        raise RuntimeError(f"read {got} of {records}")
    return gateway.counter("kop_fetched_bytes_total") - before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", required=True, help="git revision to compare with (e.g. 0d455bc)")
    ap.add_argument("--records", type=int, default=20_000)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.against], cwd=REPO, check=True,
                       capture_output=True)
        try:
            topics = {codec: f"fetchbytes-{codec}-{uuid.uuid4().hex[:6]}" for codec in CODECS}
            with Gateway(REPO) as new:
                for codec, topic in topics.items():
                    produced0 = new.counter("kop_produced_bytes_total")
                    produce(new, topic, codec, args.records)
                    produced = new.counter("kop_produced_bytes_total") - produced0
                    rows.append({"codec": codec, "records": args.records, "produced_bytes": int(produced),
                                 "fetched_bytes_now": int(fetched_bytes(new, topic, args.records))})
            with Gateway(old) as before:
                for row in rows:
                    row["fetched_bytes_before"] = int(fetched_bytes(before, topics[row["codec"]], args.records))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, capture_output=True)
    print(f"{'codec':<8} {'records':>8} {'produced B':>12} {'fetched B, ' + args.against:>20} {'fetched B, now':>15}"
          f" {'now / before':>13}")
    for r in rows:
        print(f"{r['codec']:<8} {r['records']:>8,} {r['produced_bytes']:>12,} {r['fetched_bytes_before']:>20,} "
              f"{r['fetched_bytes_now']:>15,} {r['fetched_bytes_now'] / r['fetched_bytes_before']:>13.2f}")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
