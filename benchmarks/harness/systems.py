"""The systems a benchmark drives: a Pulsar standalone, kop processes, a native Kafka broker, KoP.

Each is started by the project's own scripts (scripts/pulsar.sh, scripts/kafka-broker.sh,
scripts/kop-nar.sh) and stopped again only if this run started it. Topics are created and deleted
here too: through a Kafka AdminClient for Kafka-protocol systems, through Pulsar's REST API for
native topics.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
import urllib.request
from pathlib import Path

from .procs import REPO, find_pids, free_port, log

PULSAR_URL = "pulsar://127.0.0.1:6650"
ADMIN_URL = "http://127.0.0.1:8080"


def _script(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts" / args[0]), *args[1:]], cwd=REPO, check=check, text=True,
                          capture_output=True, env={**os.environ, **(env or {})})


class Pulsar:
    """The Pulsar standalone the native and kop figures share (reused when one already answers)."""

    def __init__(self, run_dir: Path) -> None:
        self.env = {"KOP_RUN_DIR": str(run_dir)}
        self.started_here = False

    def __enter__(self) -> "Pulsar":
        if _script("pulsar.sh", "status", check=False).returncode != 0:
            log("starting a Pulsar standalone (scripts/pulsar.sh start)")
            _script("pulsar.sh", "start", env=self.env)
            self.started_here = True
        else:
            log(f"using the Pulsar already answering at {ADMIN_URL}")
        return self

    def __exit__(self, *exc) -> None:
        if self.started_here:
            _script("pulsar.sh", "stop", env=self.env, check=False)

    @staticmethod
    def home() -> Path:
        return Path(_script("pulsar.sh", "home").stdout.strip())

    @staticmethod
    def targets() -> dict[str, tuple[int, int | None]]:
        pids = [p for p in find_pids(b"PulsarStandaloneStarter") if b"apache-pulsar-" in _cmdline(p)]
        return {"pulsar": (pids[0], None)} if pids else {}


class KafkaBroker:
    """Apache Kafka 4.1.2 in KRaft mode on 127.0.0.1:19092 (scripts/kafka-broker.sh)."""

    port = 19092

    def __init__(self, run_dir: Path) -> None:
        self.env = {"KOP_KAFKA_RUN_DIR": str(run_dir), "KOP_KAFKA_PORT": str(self.port)}
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.started_here = False

    def __enter__(self) -> "KafkaBroker":
        if _script("kafka-broker.sh", "status", env=self.env, check=False).returncode != 0:
            log("starting a native Kafka broker (scripts/kafka-broker.sh start)")
            _script("kafka-broker.sh", "start", env=self.env)
            self.started_here = True
        return self

    def __exit__(self, *exc) -> None:
        if self.started_here:
            _script("kafka-broker.sh", "stop", env=self.env, check=False)

    def targets(self) -> dict[str, tuple[int, int | None]]:
        pids = find_pids(b"kafka.Kafka")
        return {"server": (pids[0], None)} if pids else {}


BENCH_SYSTEM_NAMESPACE = f"public/__kop_bench_{uuid.uuid4().hex[:6]}"


class Kop:
    """One ``kop serve`` process on a free port, stopped with SIGTERM."""

    def __init__(self, entry_format: str, logfile: Path, extra_args: list[str] | None = None,
                 env: dict | None = None, workers: int = 0, metrics_port: int = 0) -> None:
        """``workers``: kop's server.workers (0: one per core, kop's default); every gateway of a
        bench run shares one system namespace of its own, away from any other kop on this Pulsar."""
        self.entry_format = entry_format
        self.port = free_port()
        self.workers = workers
        self.metrics_port = metrics_port
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.logfile = logfile
        self.extra_args = extra_args or []
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.rc: int | str | None = None

    def __enter__(self) -> "Kop":
        self._out = open(self.logfile, "w")
        cmd = [str(REPO / ".venv" / "bin" / "kop"), "serve", "--listen", self.bootstrap, "--entry-format",
               self.entry_format, "--pulsar-url", PULSAR_URL, "--admin-url", ADMIN_URL,
               "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--workers", str(self.workers),
               *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO,
                                     env={**os.environ, "KOP_PULSAR_SYSTEM_NAMESPACE": BENCH_SYSTEM_NAMESPACE,
                                          **self.env})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kop exited with {self.proc.returncode}: {self.logfile.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("kop did not start listening within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.rc = f"killed after 30 s ({self.proc.wait()})"
        elif self.proc:
            self.rc = self.proc.returncode
        self._out.close()

    def targets(self) -> dict[str, tuple[int, int | None]]:
        """The process tree (the workers too), and the event-loop thread when it is a single process."""
        assert self.proc
        if self.workers == 1:
            return {"server": (self.proc.pid, None), "server_loop": (self.proc.pid, self.proc.pid)}
        return {"server": (self.proc.pid, None)}

    def problems(self) -> list[str]:
        lines = self.logfile.read_text(errors="replace").splitlines()
        return [ln for ln in lines if re.search(r"\b(ERROR|WARNING|CRITICAL)\b|Traceback", ln)]


class KopNar:
    """KoP, StreamNative's protocol handler, inside a Pulsar of its own (scripts/kop-nar.sh): the
    last open-source KoP (3.1.1.1), built from source, on StreamNative's Pulsar 3.1.1.1 broker jars
    (see benchmarks/kop-nar-findings.md), with KoP's ``kafka`` entry format like kop's headline one.
    Kafka 4.x Java clients cannot talk to it (it closes the connection on ApiVersions v4)."""

    env = {"KOP_NAR_ENTRY_FORMAT": "kafka", "KOP_NAR_FRESH": "1"}

    def __init__(self) -> None:
        self.bootstrap = "127.0.0.1:9192"
        self.started_here = False
        self.error = ""

    def __enter__(self) -> "KopNar":
        script = REPO / "scripts" / "kop-nar.sh"
        if not script.exists():
            self.error = "scripts/kop-nar.sh is missing"
            return self
        if _script("kop-nar.sh", "status", check=False).returncode == 0:
            log("using the KoP already answering (scripts/kop-nar.sh status)")
        else:
            log("starting Pulsar with the KoP protocol handler (scripts/kop-nar.sh start)")
            done = _script("kop-nar.sh", "start", env=self.env, check=False)
            if done.returncode != 0:
                self.error = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["failed"]
                self.error = self.error[0]
                return self
            self.started_here = True
        return self

    def __exit__(self, *exc) -> None:
        if self.started_here:
            _script("kop-nar.sh", "stop", check=False)

    def targets(self) -> dict[str, tuple[int, int | None]]:
        pids = [p for p in find_pids(b"PulsarStandaloneStarter") if b"apache-pulsar-" not in _cmdline(p)]
        return {"server": (pids[0], None)} if pids else {}


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


# -- topics -----------------------------------------------------------------------------------------

def create_kafka_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for _, fut in admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=60).items():
        fut.result(90)
    deadline = time.monotonic() + 30
    while True:  # a Kafka broker creates partitions asynchronously: wait until Metadata has them all
        md = admin.list_topics(topic, timeout=30)
        meta = md.topics.get(topic)
        if meta is not None and meta.error is None and len(meta.partitions) == partitions and all(
                p.leader >= 0 for p in meta.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic}: Metadata does not show {partitions} partitions with leaders")
        time.sleep(0.2)


def delete_kafka_topics(bootstrap: str, topics: list[str]) -> list[str]:
    from confluent_kafka.admin import AdminClient
    problems = []
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for topic, fut in admin.delete_topics(topics, request_timeout=60).items():
        try:
            fut.result(90)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            problems.append(f"delete {topic}: {exc}")
    return problems


def delete_native_topic(topic: str, admin_url: str = ADMIN_URL) -> str | None:
    """Delete a partitioned topic through Pulsar's admin REST API (force: drops subscriptions too)."""
    path = topic.replace("persistent://", "")
    req = urllib.request.Request(f"{admin_url}/admin/v2/persistent/{path}/partitions?force=true", method="DELETE")
    try:
        with urllib.request.urlopen(req, timeout=90):
            return None
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"delete {topic}: {exc}"
