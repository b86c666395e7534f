"""The brokers each suite runs against: kop in both entry formats, and Apache Kafka as the reference.

Every target auto-creates topics with 4 partitions (librdkafka's tests need at least 2, its own CI
uses 4; franz-go creates its topics itself): kop with ``topics.default_partitions=4``, Kafka with
``num.partitions=4``.

kop runs with a system namespace and a data namespace of its own (``public/__kop_conformance`` and
``public/kop-conformance-<format>``): gateways sharing a system namespace form one Kafka cluster, and a
developer's kop on 9092 (``public/__kop``) must not join the suites' cluster, nor its topics mix with
theirs. Only one target runs at a time, so the two kop formats never see each other either.
The Kafka broker gets a fresh run directory on every start, so a previous run's topics, groups
and offsets never leak into the results.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import ROOT, log

RUN_DIR = ROOT / ".run" / "conformance"
ADMIN_URL = os.environ.get("KOP_PULSAR_ADMIN_URL", "http://127.0.0.1:8080")
SERVICE_URL = os.environ.get("KOP_PULSAR_SERVICE_URL", "pulsar://127.0.0.1:6650")
PARTITIONS = 4
SYSTEM_NAMESPACE = "public/__kop_conformance"
# Ports of `make conformance` (kop on 9092 and Kafka on 19092 stay free for a developer's own).
DEFAULT_PORTS = {"kop-pulsar": 29092, "kop-kafka": 29094, "kafka": 29096}
TARGETS = ("kafka", "kop-pulsar", "kop-kafka")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _pulsar_admin(path: str, method: str = "GET", body: object | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{ADMIN_URL}/admin/v2/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _empty_namespace(namespace: str) -> None:
    """Delete every topic a previous run left in the target's namespace: each run starts from an empty
    cluster, as the Kafka target does (fresh log dirs), since some tests create fixed topic names
    (ClientCompatibilityTest's "newtopic") and fail with TOPIC_ALREADY_EXISTS the second time."""
    from concurrent.futures import ThreadPoolExecutor
    try:
        with urllib.request.urlopen(f"{ADMIN_URL}/admin/v2/persistent/{namespace}/partitioned", timeout=30) as r:
            topics = json.load(r)
    except OSError:
        return
    paths = [t.split("://", 1)[1] for t in topics]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda path: _pulsar_admin(f"persistent/{path}/partitions?force=true", "DELETE"), paths))
    if paths:
        log(f"deleted {len(paths)} topics left in {namespace} by an earlier run")


class Target:
    """One broker under test. ``with Target(name) as t: ... t.bootstrap``."""

    def __init__(self, name: str, port: int | None = None) -> None:
        if name not in TARGETS:
            raise ValueError(f"unknown target {name!r}; one of {', '.join(TARGETS)}")
        self.name = name
        self.port = port or DEFAULT_PORTS[name]
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.dir = RUN_DIR / name
        self.proc: subprocess.Popen | None = None

    @property
    def is_kop(self) -> bool:
        return self.name.startswith("kop-")

    def __enter__(self) -> "Target":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if _answers(self.port):
            raise RuntimeError(f"port {self.port} is taken: {self.name} needs it (another run still going?)")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        if self.is_kop:
            self._start_kop()
        else:
            self._start_kafka()
        log(f"{self.name} is up on {self.bootstrap}")

    def _start_kop(self) -> None:
        entry_format = self.name.split("-", 1)[1]
        namespace = f"kop-conformance-{entry_format}"
        # Created with the retention `make run`'s Pulsar gives every namespace (7 days, no size bound:
        # Kafka's defaults, which kop reports as retention.ms / retention.bytes): Kafka keeps what was
        # consumed, and so must the suites' data.
        if _pulsar_admin(f"namespaces/public/{namespace}", "PUT", {}) not in (204, 409):
            raise RuntimeError(f"could not create the Pulsar namespace public/{namespace} at {ADMIN_URL}")
        _pulsar_admin(f"namespaces/public/{namespace}/retention", "POST",
                      {"retentionTimeInMinutes": 7 * 24 * 60, "retentionSizeInMB": -1})
        _empty_namespace(f"public/{namespace}")
        env = {**os.environ, "KOP_TOPICS_DEFAULT_PARTITIONS": str(PARTITIONS),
               "KOP_PULSAR_SYSTEM_NAMESPACE": SYSTEM_NAMESPACE, "KOP_PULSAR_NAMESPACE": namespace}
        self._log = open(self.dir / "kop.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kop.cli", "serve", "--listen", self.bootstrap,
             "--entry-format", entry_format, "--metrics-listen", "127.0.0.1:0",
             "--admin-url", ADMIN_URL, "--pulsar-url", SERVICE_URL],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 90
        while not _answers(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"kop exited with {self.proc.returncode}; see {self.dir / 'kop.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"kop did not listen within 90 s; see {self.dir / 'kop.log'}")
            time.sleep(0.2)
        self._settle()

    def _settle(self, quiet_s: float = 4.0, limit_s: float = 30.0) -> None:
        """Wait until Metadata lists the same brokers for quiet_s: kop's worker processes
        (server.workers) join the gateway's fleet one by one, a second or two apart."""
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        seen, since, deadline = None, time.monotonic(), time.monotonic() + limit_s
        while time.monotonic() < deadline:
            brokers = sorted(admin.list_topics(timeout=10).brokers)
            if brokers != seen:
                seen, since = brokers, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                break
            time.sleep(0.5)
        log(f"{self.name}: Metadata lists {len(seen or [])} broker(s)")

    def _kafka_env(self) -> dict[str, str]:
        return {**os.environ, "KOP_KAFKA_RUN_DIR": str(self.dir), "KOP_KAFKA_PORT": str(self.port),
                "KAFKA_BROKER_EXTRA_CONF": f"num.partitions={PARTITIONS}"}

    def _start_kafka(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "kafka-broker.sh"), "start"], check=True,
                       env=self._kafka_env(), stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.is_kop:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self.proc is not None:
                self._log.close()
        else:
            subprocess.run([str(ROOT / "scripts" / "kafka-broker.sh"), "stop"], check=False,
                           env=self._kafka_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def alive(self) -> bool:
        """kop's process still runs (a crash mid-suite is reported, not blamed on the tests)."""
        return _answers(self.port) if not self.is_kop else (self.proc is not None and self.proc.poll() is None)


def pulsar_answers() -> bool:
    try:
        with urllib.request.urlopen(f"{ADMIN_URL}/admin/v2/brokers/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False
