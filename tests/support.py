"""Test support: run kop as a real process, talk raw Kafka protocol, reach Pulsar's admin API."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

from kafka.protocol.consumer import FetchRequest, FetchResponse
from kafka.record import MemoryRecords
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("KOP_PULSAR_ADMIN_URL", "http://127.0.0.1:8080")
SERVICE_URL = os.environ.get("KOP_PULSAR_SERVICE_URL", "pulsar://127.0.0.1:6650")
LOG_DIR = ROOT / ".run" / "test-logs"
# The offsets.mode the gateways of this run use (kop's default unless KOP_OFFSETS_MODE says otherwise):
# tests that look at offset values expect contiguous ones (0, 1, 2, ...) or packed positions.
OFFSETS_MODE = os.environ.get("KOP_OFFSETS_MODE") or __import__("kop.config", fromlist=["OffsetsConfig"]).OffsetsConfig().mode
CONTIGUOUS = OFFSETS_MODE == "contiguous"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin(path: str, method: str = "GET", body: object | None = None, *, url: str = ADMIN_URL,
          token: str | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{url}/admin/v2/{path}", method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw


def drop_namespace(namespace: str) -> None:
    """Best effort: a test namespace and its topics (they must not pile up)."""
    status, topics = admin(f"persistent/{namespace}/partitioned")
    for topic in topics if status == 200 else []:
        admin(f"persistent/{namespace}/{topic.rsplit('/', 1)[1]}/partitions?force=true", method="DELETE")
    status, topics = admin(f"persistent/{namespace}")
    for topic in topics if status == 200 else []:
        admin(f"persistent/{namespace}/{topic.rsplit('/', 1)[1]}?force=true", method="DELETE")
    admin(f"namespaces/{namespace}?force=true", method="DELETE")


def pulsar_reachable() -> bool:
    try:
        return admin("brokers/health")[1] == "ok"
    except OSError:
        return False


# The gateways of one test session form one fleet of their own: kop processes of anything else using
# the same Pulsar (a developer's `make run`, another test run) would otherwise join it, and lead its
# partitions or coordinate its groups.
SYSTEM_NAMESPACE = f"public/__kop_test_{uuid.uuid4().hex[:8]}"


class Gateway:
    """A kop process (`python -m kop.cli serve`) on a free port; its log is kept for assertions."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, port: int | None = None,
                 admin_url: str = ADMIN_URL, service_url: str = SERVICE_URL) -> None:
        self.port = port or free_port()
        self.metrics_port = free_port()  # /metrics, /health, /ready (several gateways run at once)
        self.admin_url, self.service_url = admin_url, service_url
        self.args = list(args)
        self.env = env or {}
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"kop-{self.port}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Gateway":
        # One process: tests/pulsar/test_workers.py covers several workers.
        env = {**os.environ, "KOP_METRICS_LISTEN_PORT": str(self.metrics_port), "KOP_SERVER_WORKERS": "1",
               "KOP_PULSAR_SYSTEM_NAMESPACE": SYSTEM_NAMESPACE, **self.env}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kop.cli", "serve", "--listen", f"127.0.0.1:{self.port}",
             "--admin-url", self.admin_url, "--pulsar-url", self.service_url, *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kop exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"kop did not listen within {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


# -- raw Kafka protocol, for tests that must send what no client would --------------------------

def raw_request(api_key: int, version: int, body: bytes, correlation_id: int = 1, client_id: str = "raw",
                flexible: bool = False) -> bytes:
    cid = client_id.encode()
    header = struct.pack(">hhih", api_key, version, correlation_id, len(cid)) + cid
    if flexible:
        header += b"\x00"
    return struct.pack(">i", len(header) + len(body)) + header + body


def read_frame(sock: socket.socket, timeout: float = 10) -> bytes | None:
    """One response frame, or None if the server closed the connection."""
    sock.settimeout(timeout)
    size_bytes = _read_exact(sock, 4)
    if size_bytes is None:
        return None
    (size,) = struct.unpack(">i", size_bytes)
    return _read_exact(sock, size)


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def closed_by_server(sock: socket.socket, timeout: float = 10) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class RawClient:
    """A blocking Kafka client speaking exactly the requests a test builds (kafka.protocol classes)."""

    def __init__(self, bootstrap: str, timeout: float = 30) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.timeout = timeout
        self._correlation = 0

    def send(self, request, version: int) -> int:
        self._correlation += 1
        request.with_header(correlation_id=self._correlation, client_id="raw-test")
        frame = bytes(request.encode(version=version, header=True, framed=True))
        self.sock.sendall(frame)
        return self._correlation

    def call(self, request, version: int, response_cls):
        correlation = self.send(request, version)
        frame = read_frame(self.sock, self.timeout)
        assert frame is not None, "the gateway closed the connection"
        (got,) = struct.unpack_from(">i", frame, 0)
        assert got == correlation
        flexible = request.flexible_version_q(version) and response_cls.__name__ != "ApiVersionsResponse"
        body = frame[5:] if flexible else frame[4:]  # header v1 has an (empty) tagged-field byte
        return response_cls.decode(body, version=version)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CountingConsumer(threading.Thread):
    """A confluent-kafka consumer of a fresh group counting every value it reads from ``topic``
    (``received``) until :meth:`stop`; ``conf`` adds to or overrides its settings."""

    def __init__(self, bootstrap: str, topic: str, **conf) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.conf = {"bootstrap.servers": bootstrap, "group.id": unique("g"), "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, **conf}
        self.received: Counter[bytes] = Counter()
        self._stopping = threading.Event()

    def run(self) -> None:
        from confluent_kafka import Consumer
        consumer = Consumer(self.conf)
        consumer.subscribe([self.topic])
        try:
            while not self._stopping.is_set():
                for m in consumer.consume(500, 0.2):
                    if m.error() is None:
                        self.received[m.value()] += 1
        finally:
            consumer.close()

    def stop(self, timeout: float = 30) -> None:
        self._stopping.set()
        self.join(timeout)


def raw_fetch(bootstrap: str, topic: str, offset: int, max_wait_ms: int, min_bytes: int,
              partition: int = 0, max_bytes: int = 1 << 20):
    """One Fetch v12 on a fresh connection: (seconds until the answer, the partition's response)."""
    F = FetchRequest
    request = F(replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
                isolation_level=0, session_id=0, session_epoch=-1, topics=[F.FetchTopic(
                    topic=topic, partitions=[F.FetchTopic.FetchPartition(
                        partition=partition, current_leader_epoch=-1, fetch_offset=offset, last_fetched_epoch=-1,
                        log_start_offset=-1, partition_max_bytes=max_bytes)])],
                forgotten_topics_data=[], rack_id="")
    request.with_header(correlation_id=42, client_id="raw-fetch")
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(bytes(request.encode(version=12, header=True, framed=True)))
        frame = read_frame(sock, timeout=max_wait_ms / 1000 + 10)
        elapsed = time.monotonic() - start
    assert frame is not None, "kop closed the connection instead of answering the Fetch"
    (correlation_id,) = struct.unpack_from(">i", frame)
    assert correlation_id == 42
    response = FetchResponse.decode(frame, version=12, header=True)
    assert response.error_code == 0
    [topic_resp] = response.responses
    assert topic_resp.topic == topic
    [part] = topic_resp.partitions
    assert part.partition_index == partition
    assert part.error_code == 0, part.error_code
    return elapsed, part


def values_of(records: bytes | None) -> list[bytes]:
    if not records:
        return []
    out = []
    mr = MemoryRecords(bytes(records))
    while mr.has_next():
        batch = mr.next_batch()
        out.extend(r.value for r in batch)
    return out


def metric_samples(port: int) -> dict[tuple[str, tuple], float]:
    """A kop's /metrics as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
