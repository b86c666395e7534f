"""Consumer-group timings through kop, against a running Pulsar (e.g. `make pulsar-start`):

- synchronous commit rate of one confluent-kafka member (commits/s, one partition per commit),
- rebalance time of 3 members subscribing together (from the first subscribe to all 3 assigned),
- failover: with a second gateway, the coordinator of a group is killed (SIGKILL) while a member
  commits in a loop; the time from the kill to the first commit acknowledged by the other gateway.

    .venv/bin/python benchmarks/group_timings.py [--commits 500]

Prints the figures; rough numbers on a shared machine, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from kop.backend.fleet import node_id_of  # noqa: E402
from kop.groups.offsets_format import partition_for  # noqa: E402
from kop.mapping.placement import derive_node_id, offsets_partition_key, place  # noqa: E402

ADMIN_URL = os.environ.get("KOP_PULSAR_ADMIN_URL", "http://127.0.0.1:8080")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_kop(port: int, delay_ms: int) -> subprocess.Popen:
    env = {**os.environ, "KOP_GROUPS_INITIAL_REBALANCE_DELAY_MS": str(delay_ms)}
    proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "kop"), "serve", "--listen", f"127.0.0.1:{port}",
                             "--metrics-listen", "127.0.0.1:0"],
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
    parser.add_argument("--failovers", type=int, default=3)
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

        for run in range(args.failovers):
            other_port = free_port()
            other = start_kop(other_port, args.initial_delay_ms)
            print(f"failover {run + 1}: " + failover(kop, port, other_port, topic))
            kop, port = other, other_port  # the survivor is the next victim's partner
    finally:
        kop.send_signal(signal.SIGTERM)
        kop.wait(30)


def _holders() -> dict[int, int]:
    url = f"{ADMIN_URL}/admin/v2/persistent/public/__kop/__offsets/partitioned-stats?perPartition=true"
    with urllib.request.urlopen(url, timeout=10) as resp:
        stats = json.load(resp)
    return {int(name.rsplit("-", 1)[1]): node_id_of(pubs["publishers"][0]["producerName"])
            for name, pubs in stats["partitions"].items() if pubs["publishers"]}


def failover(victim: subprocess.Popen, victim_port: int, other_port: int, topic: str) -> str:
    """Kill -9 the coordinator of a group that commits in a loop; time to the next acknowledged commit."""
    victim_node = derive_node_id("127.0.0.1", victim_port)
    wanted = {p for p in range(8) if place(offsets_partition_key(p), [victim_node, derive_node_id(
        "127.0.0.1", other_port)]) == victim_node}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not wanted <= {p for p, n in _holders().items() if n == victim_node}:
        time.sleep(0.1)  # the handover to the new gateway has settled
    group = next(g for g in (f"bench-fo-{uuid.uuid4().hex[:8]}" for _ in range(1000))
                 if partition_for(g, 8) in wanted)
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{victim_port},127.0.0.1:{other_port}",
                         "group.id": group, "enable.auto.commit": False})
    acked: list[float] = []
    stop = threading.Event()

    def commit_loop() -> None:
        i = 0
        while not stop.is_set():
            try:
                consumer.commit(offsets=[TopicPartition(topic, 0, i)], asynchronous=False)
                acked.append(time.monotonic())
            except KafkaException:
                time.sleep(0.01)
            i += 1
    thread = threading.Thread(target=commit_loop)
    thread.start()
    while len(acked) < 20:
        time.sleep(0.01)
    victim.kill()
    victim.wait()
    killed = time.monotonic()  # the process is gone: any later acknowledgement came from the survivor
    while not [t for t in acked if t > killed] and time.monotonic() - killed < 60:
        time.sleep(0.01)
    stop.set()
    thread.join()
    consumer.close()
    after = [t for t in acked if t > killed]
    return f"first commit acknowledged {after[0] - killed:.2f} s after kill -9" if after else "no commit within 60 s"


if __name__ == "__main__":
    sys.exit(main())
