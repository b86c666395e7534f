"""What the application tests share: running a Java application of scripts/kafka-apps.sh as a process
(its output kept in a log file), reading topics to the end, and recording what a run measured.

``APPS_FULL=1`` (``make test-apps``) selects the full variants: both entry formats, more records and
two restarts; without it (``make test``) a quick variant of each application runs once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from support import LOG_DIR, ROOT

APPS = ROOT / "scripts" / "kafka-apps.sh"
FULL = os.environ.get("APPS_FULL", "") not in ("", "0")
RESULTS = LOG_DIR / "apps"


class JavaApp:
    """``scripts/kafka-apps.sh run <main> <args>`` as a process; stdout and stderr go to a log file."""

    def __init__(self, name: str, main: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.name, self.main, self.args = name, main, list(args)
        self.env = {**os.environ, **(env or {})}
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "JavaApp":
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n=== start {self.starts + 1}: {self.main} {' '.join(self.args)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen([str(APPS), "run", self.main, *self.args], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self.env, cwd=ROOT, start_new_session=True)
        self.starts += 1
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for(self, text: str, timeout: float, after: int = 0) -> None:
        """Until ``text`` appears in the log past character ``after``; fails if the process dies."""
        deadline = time.monotonic() + timeout
        while text not in self.log()[after:]:
            if not self.alive():
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before {text!r}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {text!r} within {timeout:.0f} s:\n{self.log()[-4000:]}")
            time.sleep(0.3)

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM (the JVM's shutdown hooks close the application cleanly), SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()
        finally:
            self._log.close()


    def kill(self) -> int:
        """SIGKILL, no shutdown hook: what a crash leaves behind."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            return self.proc.wait(30)
        finally:
            self._log.close()


def read_all(bootstrap: str, topic: str, partitions: int, until, timeout: float, deserialize=None):
    """Read ``topic`` from the beginning (no group) into a list of (key, value) until ``until(records)``
    holds or ``timeout`` passes; returns the records."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, -2) for p in range(partitions)])
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.5):
                if m.error() is None:
                    value = m.value() if deserialize is None else deserialize(m.value())
                    records.append((m.key(), value))
            if until(records):
                break
    finally:
        consumer.close()
    return records


def record(name: str, measured: dict) -> None:
    """Keep what a run measured (printed with -s, and as JSON next to the test logs)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(measured, indent=2) + "\n")
    print(f"\n[{name}] {json.dumps(measured)}")


def tool_output(kafka_tools: Path, main: str, *args: str) -> str:
    proc = subprocess.run([str(kafka_tools), "run", main, *args], capture_output=True, timeout=180)
    out = proc.stdout.decode() + proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"{main} {' '.join(args)}: exit {proc.returncode}\n{out}"
    return out
