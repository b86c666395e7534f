#!/usr/bin/env python3
"""kop's CPU time per one-record Produce request, this checkout against another revision.

    .venv/bin/python benchmarks/cpu_per_request.py --against 414c9c7 [--requests 20000] [--rounds 3]

Needs a Pulsar answering at 127.0.0.1:6650/8080 (`make pulsar-start`). The other revision is
checked out into a temporary git worktree and run with this checkout's virtualenv. Rounds alternate
between the two gateways, each a fresh process; one confluent-kafka producer sends one record per
request (batch.num.messages=1, acks=all, 5 in flight) to one partition, and the gateway's CPU time
(user + system, all threads, from /proc) is divided by the requests. The median of the rounds is
printed. A measurement of cost, not of speed: CPU per request moves little with the machine's load,
throughput a lot. Both sides use the compiled record-batch codec when this checkout has it built and
the other revision's C source is the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(tree: Path, requests: int) -> tuple[float, float]:
    """(CPU microseconds per request, requests per second) of a fresh gateway from ``tree``."""
    port = _free_port()
    args = [sys.executable, "-m", "kop.cli", "serve", "--listen", f"127.0.0.1:{port}"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    help_text = subprocess.run(args[:3] + ["serve", "--help"], cwd=tree, env=env, capture_output=True, text=True).stdout
    if "--metrics-listen" in help_text:
        args += ["--metrics-listen", "127.0.0.1:0"]
    if "--workers" in help_text:  # one process: the CPU of one gateway, not of a supervisor and its workers
        args += ["--workers", "1"]
    env["KOP_PULSAR_SYSTEM_NAMESPACE"] = f"public/__kop_cpu_{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen(args, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"kop from {tree} did not start")
                time.sleep(0.1)
        topic = "cpu-" + uuid.uuid4().hex[:8]
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "linger.ms": 0, "acks": "all",
                             "max.in.flight.requests.per.connection": 5, "batch.num.messages": 1})
        for _ in range(200):  # topic creation, readers, caches
            producer.produce(topic, b"x" * 100, partition=0)
        producer.flush(60)
        time.sleep(1)
        cpu0, t0 = _cpu_s(proc.pid), time.monotonic()
        for i in range(requests):
            producer.produce(topic, b"x" * 100, partition=0)
            if i % 4 == 0:
                producer.poll(0)
        if producer.flush(120) != 0:
            raise RuntimeError("records not acknowledged")
        cpu1, t1 = _cpu_s(proc.pid), time.monotonic()
        return (cpu1 - cpu0) / requests * 1e6, requests / (t1 - t0)
    finally:
        proc.terminate()
        proc.wait(30)


def _share_compiled_codec(other: Path) -> None:
    """The compiled record-batch codec (kop/_batch_codec*.so) is a build artifact git does not carry:
    without it the other revision would convert batches in Python and cost more for that alone. It is
    copied when both revisions have the same C source, else both sides are measured without it."""
    built = sorted((REPO / "kop").glob("_batch_codec*.so"))
    if not built:
        return
    source = REPO / "kop" / "_batch_codec.c"
    if source.is_file() and (other / "kop" / "_batch_codec.c").is_file() and \
            source.read_bytes() == (other / "kop" / "_batch_codec.c").read_bytes():
        for path in built:
            shutil.copy2(path, other / "kop" / path.name)
    else:
        print("the other revision's compiled codec differs or is absent: comparing without it is unfair; "
              "build it there first", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="git revision to compare with")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(other), args.against], cwd=REPO, check=True)
        _share_compiled_codec(other)
        try:
            results: dict[str, list[tuple[float, float]]] = {"this checkout": [], args.against: []}
            for r in range(args.rounds):
                for name, tree in (("this checkout", REPO), (args.against, other)):
                    us, rate = one_round(tree, args.requests)
                    results[name].append((us, rate))
                    print(f"round {r + 1} {name}: {us:.0f} us CPU per request, {rate:.0f} requests/s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=REPO, check=False)
    for name, rounds in results.items():
        cpu = sorted(u for u, _ in rounds)
        print(f"{name}: median {cpu[len(cpu) // 2]:.0f} us CPU per request (rounds: "
              f"{', '.join(f'{u:.0f}' for u, _ in rounds)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
