"""``kop serve --workers 2`` (kop/workers.py): two worker processes behind one bootstrap port.

Each worker is a fleet member advertising its own port, so Metadata names both and a client spreads
its partitions over them; a worker killed with SIGKILL is started again by the supervisor while
the other goes on serving; /metrics merges the workers' samples with a ``worker`` label; SIGTERM
stops everything cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kop import __version__ as kop_version
from support import ROOT, SYSTEM_NAMESPACE, free_port, metric_samples, unique

pytestmark = [pytest.mark.pulsar, pytest.mark.timeout(240)]
OFFSET = 3000  # server.worker_port_offset: a worker's own port is the shared one + 3000 + its index


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def _round_trip(bootstrap: str, topic: str, values: list[bytes]) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i, value in enumerate(values):
        producer.produce(topic, value, partition=i % 4)
    assert producer.flush(60) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("w"), "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(4)])
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(got) < len(values) and time.monotonic() < deadline:
        got += [m.value() for m in consumer.consume(100, timeout=1) if not m.error()]
    consumer.close()
    return got


def test_two_workers_share_the_bootstrap_port_and_survive_a_kill(pulsar):
    port, metrics = free_port(), free_port()
    env = {**os.environ, "KOP_SERVER_WORKER_PORT_OFFSET": str(OFFSET), "KOP_PULSAR_SYSTEM_NAMESPACE": SYSTEM_NAMESPACE,
           "KOP_SERVER_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "kop.cli", "serve", "--listen", f"127.0.0.1:{port}",
                             "--metrics-listen", f"127.0.0.1:{metrics}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bootstrap = f"127.0.0.1:{port}"
    try:
        assert _wait(lambda: _get(metrics, "/ready")[0] == 200, 90), _get(metrics, "/ready")
        own = {port + OFFSET, port + OFFSET + 1}
        admin = AdminClient({"bootstrap.servers": bootstrap})
        assert _wait(lambda: own <= {b.port for b in admin.list_topics(timeout=10).brokers.values()}, 30)

        topic = unique("workers")
        admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
        leaders = {p.leader for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()}
        values = [f"v{i}".encode() for i in range(200)]
        assert sorted(_round_trip(bootstrap, topic, values)) == sorted(values)

        samples = metric_samples(metrics)
        assert {labels for name, labels in samples if name == "kop_build_info"} >= {
            (("version", kop_version), ("worker", "0")), (("version", kop_version), ("worker", "1"))}
        produced = sum(v for (name, labels), v in samples.items()
                       if name == "kop_produced_records_total" and ("topic", topic) in labels)
        assert produced == len(values)
        brokers = {b.id: b.port for b in admin.list_topics(timeout=10).brokers.values()}
        assert {brokers[leader] for leader in leaders} <= own

        victim = _worker_pids(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        assert _wait(lambda: len(_worker_pids(proc.pid)) == 2 and victim not in _worker_pids(proc.pid), 60), \
            "the supervisor did not start the killed worker again"
        assert _wait(lambda: _get(metrics, "/ready")[0] == 200, 90)
        more = [f"after-{i}".encode() for i in range(100)]
        topic2 = unique("workers-after")
        admin.create_topics([NewTopic(topic2, 4, 1)])[topic2].result(30)
        assert sorted(_round_trip(bootstrap, topic2, more)) == sorted(more)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out[-3000:]
    assert "worker 0 exited" in out or "worker 1 exited" in out, out[-3000:]
    assert "all workers stopped" in out
