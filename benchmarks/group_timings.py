"""Consumer-group timings through kop, against a running Pulsar (e.g. `make pulsar-start`):

- synchronous commit rate of one confluent-kafka member (commits/s, one partition per commit),
- rebalance time of 3 members subscribing together (from the first subscribe to all 3 assigned).

    .venv/bin/python benchmarks/group_timings.py [--commits 500]

Prints the figures; rough numbers on a shared machine, not assertions.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_kop(port: int, delay_ms: int) -> subprocess.Popen:
    env = {**os.environ, "KOP_GROUPS_INITIAL_REBALANCE_DELAY_MS": str(delay_ms)}
    proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "kop"), "serve", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("kop did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--initial-delay-ms", type=int, default=0)
    args = parser.parse_args()
    port = free_port()
    kop = start_kop(port, args.initial_delay_ms)
    bootstrap = f"127.0.0.1:{port}"
    try:
        topic = f"bench-groups-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(30)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(600):
            producer.produce(topic, value=b"%d" % i, partition=i % 6)
        producer.flush(30)

        # commit rate
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 0)])
        high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        started = time.monotonic()
        for i in range(args.commits):
            consumer.commit(offsets=[TopicPartition(topic, 0, high - (i % 2))], asynchronous=False)
        elapsed = time.monotonic() - started
        consumer.close()
        print(f"synchronous commits: {args.commits} in {elapsed:.2f} s = {args.commits / elapsed:.0f} commits/s")

        # rebalance time of 3 members subscribing together
        group = f"bench-rb-{uuid.uuid4().hex[:8]}"
        assigned: dict[int, float] = {}
        members = [Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 10_000,
                             "enable.auto.commit": False}) for _ in range(3)]
        stop = threading.Event()

        def run(index: int, consumer: Consumer) -> None:
            def on_assign(c, partitions):
                if partitions:
                    assigned.setdefault(index, time.monotonic())
            consumer.subscribe([topic], on_assign=on_assign)
            while not stop.is_set():
                consumer.poll(0.1)
        t0 = time.monotonic()
        threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(members)]
        for t in threads:
            t.start()
        while len(assigned) < 3 and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        took = max(assigned.values()) - t0 if len(assigned) == 3 else float("nan")
        stop.set()
        for t in threads:
            t.join()
        for c in members:
            c.close()
        print(f"rebalance, 3 members subscribing together (initial delay {args.initial_delay_ms} ms): "
              f"all assigned after {took:.2f} s")
    finally:
        kop.send_signal(signal.SIGTERM)
        kop.wait(30)


if __name__ == "__main__":
    sys.exit(main())
