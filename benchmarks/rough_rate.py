#!/usr/bin/env python3
"""A rough, one-shot throughput comparison: native Pulsar vs. Kafka clients through kop.

    .venv/bin/python benchmarks/rough_rate.py [--records N] [--size BYTES] [--partitions P]

Everything runs against the same Pulsar (pulsar://127.0.0.1:6650, admin http://127.0.0.1:8080),
which must already be running; the script never starts or stops it. In one run it measures:

1. native Pulsar: ``bin/pulsar-perf produce`` (unthrottled, default batching) and then
   ``bin/pulsar-perf consume`` (catch-up from Earliest with a fresh subscription) on a fresh
   partitioned topic ``persistent://public/default/bench-native-<id>``;
2. kop, once per entry format (``kafka`` and ``pulsar``): a ``kop serve`` process per format on a
   free port (stopped with SIGTERM afterwards), then
   - produce with Kafka 4.1.2's ProducerPerformance (acks=all, unthrottled),
   - try ConsumerPerformance (it always uses a consumer group; kop has no FindCoordinator/JoinGroup
     yet, so this is expected to fail and is only recorded),
   - consume catch-up with confluent-kafka (assign() at OFFSET_BEGINNING, no commits),
   - ProducerPerformance again with batch.size=256 KiB (an extra, non-default run to a third topic:
     shows how much of the default figure is the Java client's 16 KiB batches x 5 in flight),
   - produce with confluent-kafka (acks=all, linger.ms=5) to a second topic, and consume that too.
   Topics are created through kop (confluent-kafka AdminClient) with --partitions partitions.

While each phase runs, a sampler reads /proc to get the CPU use of the client process (tree), the
kop process (and of its main thread, i.e. the asyncio event loop), the Pulsar standalone JVM, and
the whole machine (the rest is "other": e.g. a concurrently running test suite).

Rates are computed from the records of the phase and its duration:
- pulsar-perf: from its own log timestamps ("Created N producers" -> "DONE", which pulsar-perf
  logs once N sends are acknowledged; "Start receiving" -> "DONE" for consume), so JVM start-up
  and pulsar-perf's ~10 s shutdown wait are excluded;
- ProducerPerformance: its final summary line (it times from its first send to the last ack);
- confluent-kafka: timed here, first produce() -> flush() done / assign() -> N-th record.
MB/s are MiB (2^20 bytes) of record values per second, like both tools print.

Output: a table on stdout, and benchmarks/results/rough-<date>.json. Tool logs go to a temporary
directory (printed; kept with --keep-logs). The benchmark topics are deleted at the end
(--keep-topics keeps them). Pulsar must allow topic deletion and kop must serve DeleteTopics.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
PULSAR_URL = "pulsar://127.0.0.1:6650"
ADMIN_URL = "http://127.0.0.1:8080"
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------------
# CPU sampling from /proc (no psutil in the venv)
# --------------------------------------------------------------------------------------------------

def _proc_ticks(pid: int, tid: int | None = None) -> int | None:
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    try:
        with open(path) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree_ticks(pid: int, kids: dict[int, list[int]]) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        t = _proc_ticks(p)
        if t is not None:
            total += t
        stack.extend(kids.get(p, ()))
    return total


def _machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return sum(parts[:8]) - idle, sum(parts[:8])


def find_pulsar_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"PulsarStandaloneStarter" in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


class CpuSampler:
    """Samples CPU% (100 = one core) of named processes/threads and of the whole machine.

    Targets: name -> (pid, None) for a process tree, (pid, -1) for the process alone (not its
    children), (pid, tid) for one thread. "other" is the machine's busy time minus the processes.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.targets: dict[str, tuple[int, int | None]] = {}
        self.samples: list[tuple[float, float, dict[str, float]]] = []  # (wall start, wall end, pct)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, targets: dict[str, tuple[int, int | None]]) -> None:
        self.targets = {k: v for k, v in targets.items() if v[0]}
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> tuple[dict[str, int], tuple[int, int]]:
        kids = _children_map()
        out = {}
        for name, (pid, tid) in self.targets.items():
            if tid is None:
                out[name] = _tree_ticks(pid, kids)
            else:
                out[name] = _proc_ticks(pid, tid if tid > 0 else None) or 0
        return out, _machine_ticks()

    def _run(self) -> None:
        ncpu = os.cpu_count() or 1
        prev, prev_m = self._read()
        prev_t = time.time()
        last = False
        while not last:
            last = self._stop.wait(self.interval)
            cur, cur_m = self._read()
            now = time.time()
            if now - prev_t < 0.1 and not last:  # ticks are 10 ms: too short a span is all noise
                continue
            pct: dict[str, float] = {}
            accounted = 0.0
            for name, (_, tid) in self.targets.items():
                # A process of a tree that exits takes its ticks with it: never below 0.
                pct[name] = max(0.0, 100.0 * (cur[name] - prev[name]) / CLK_TCK / (now - prev_t))
                if tid in (None, -1):  # threads are already inside their process
                    accounted += pct[name]
            dm_busy, dm_total = cur_m[0] - prev_m[0], cur_m[1] - prev_m[1]
            pct["machine_busy"] = 100.0 * ncpu * dm_busy / dm_total if dm_total else 0.0
            pct["other"] = max(0.0, pct["machine_busy"] - accounted)
            self.samples.append((prev_t, now, pct))
            prev, prev_m, prev_t = cur, cur_m, now

    def halt(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None

    def stop(self, window: tuple[float, float] | None = None) -> dict[str, dict[str, float]]:
        self.halt()
        return self.summary(window)

    def summary(self, window: tuple[float, float] | None = None) -> dict[str, dict[str, float]]:
        """Time-weighted average and peak per target, over window (wall clock, epoch s) if given."""
        samples = self.samples
        if window:
            inside = [(max(a, window[0]), min(b, window[1]), p) for a, b, p in samples
                      if min(b, window[1]) > max(a, window[0])]
            samples = inside or samples
        out: dict[str, dict[str, float]] = {}
        for name in [*self.targets, "other", "machine_busy"]:
            vals = [(b - a, p[name]) for a, b, p in samples if name in p]
            weight = sum(w for w, _ in vals)
            if weight > 0:
                out[name] = {"avg": round(sum(w * v for w, v in vals) / weight, 1),
                             "max": round(max(v for _, v in vals), 1)}
        return out


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------

@dataclass
class Result:
    system: str       # "pulsar (native)", "kop kafka-format", "kop pulsar-format"
    client: str       # "pulsar-perf", "kafka ProducerPerformance", "confluent-kafka", ...
    phase: str        # "produce" / "consume"
    topic: str
    records: int = 0
    seconds: float = 0.0
    ok: bool = False
    tool_reported: str = ""
    note: str = ""
    cpu: dict = field(default_factory=dict)
    size: int = 0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.ok and self.seconds > 0 else 0.0

    @property
    def mib_s(self) -> float:
        return self.rate * self.size / MIB

    def as_json(self) -> dict:
        d = asdict(self)
        d["records_per_s"] = round(self.rate, 1)
        d["mib_per_s"] = round(self.mib_s, 2)
        d["seconds"] = round(self.seconds, 3)
        return d


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Native Pulsar with pulsar-perf
# --------------------------------------------------------------------------------------------------

_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[,.]\d+[+-]\d{4})")


def _line_time(line: str) -> dt.datetime | None:
    m = _TS.match(line)
    if not m:
        return None
    return dt.datetime.strptime(m.group(1).replace(".", ","), "%Y-%m-%dT%H:%M:%S,%f%z")


def _first_time(lines: list[str], needle: str | re.Pattern) -> dt.datetime | None:
    for line in lines:
        hit = needle.search(line) if isinstance(needle, re.Pattern) else needle in line
        if hit:
            return _line_time(line)
    return None


def pulsar_home() -> Path:
    out = subprocess.run([str(REPO / "scripts" / "pulsar.sh"), "home"], capture_output=True, text=True,
                         check=True).stdout.strip()
    return Path(out)


def run_tool(cmd: list[str], logfile: Path, timeout: float, sampler: CpuSampler,
             extra_targets: dict[str, tuple[int, int | None]]) -> tuple[int | None, str, float]:
    """Run a command with its stdout+stderr in logfile, sampling CPU until it exits (sampler.summary()
    then gives the figures for a window); returns (rc, output, wall-clock exit time)."""
    with open(logfile, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                start_new_session=True)
        sampler.start({"client": (proc.pid, None), **extra_targets})
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own child's process group only
            proc.wait()
            rc = None
        sampler.halt()
    return rc, logfile.read_text(errors="replace"), time.time()


def native_phase(home: Path, phase: str, topic: str, n: int, size: int, partitions: int,
                 logs: Path, sampler: CpuSampler, pulsar_targets: dict) -> Result:
    perf = str(home / "bin" / "pulsar-perf")
    res = Result("pulsar (native)", "pulsar-perf", phase, topic, size=size)
    if phase == "produce":
        # -r must be positive (0 is rejected by Guava's RateLimiter): use an unreachable rate.
        cmd = [perf, "produce", "-u", PULSAR_URL, "-au", ADMIN_URL, "-r", "10000000", "-m", str(n),
               "-s", str(size), "-np", str(partitions), topic]
        start_pat, rate_pat = re.compile(r"Created \d+ producers"), re.compile(
            r"Aggregated throughput stats --- (\d+) records sent --- ([\d.]+) msg/s --- ([\d.]+) Mbit/s")
        res.note = "Java client, batching on (1 ms window, <=1000 msgs), -r 10M (unthrottled)"
    else:
        cmd = [perf, "consume", "-u", PULSAR_URL, "-sp", "Earliest", "-ss", "bench-sub", "-m", str(n), topic]
        start_pat, rate_pat = re.compile(r"Start receiving from"), re.compile(
            r"Aggregated throughput stats --- (\d+) records received --- ([\d.]+) msg/s --- ([\d.]+) Mbit/s")
        res.note = "Exclusive subscription from Earliest, acks every message"
    rc, out, _ = run_tool(cmd, logs / f"native-{phase}.log", 180, sampler, pulsar_targets)
    lines = out.splitlines()
    t_start = _first_time(lines, start_pat)
    t_done = _first_time(lines, re.compile(r"-+ ?DONE"))
    res.cpu = sampler.summary((t_start.timestamp(), t_done.timestamp()) if t_start and t_done else None)
    agg = rate_pat.search(out)
    if agg:
        res.tool_reported = (f"{agg.group(1)} records, {agg.group(2)} msg/s, {agg.group(3)} Mbit/s"
                             + (" (over the whole run incl. ~10 s shutdown wait)" if phase == "produce" else ""))
    errors = [ln for ln in lines if " ERROR " in ln or "Exception" in ln]
    if rc is None:
        res.note += "; TIMED OUT"
    elif t_start and t_done:
        res.ok, res.records, res.seconds = True, n, (t_done - t_start).total_seconds()
    else:
        res.note += f"; FAILED (rc={rc}, no start/DONE lines): " + " | ".join(errors[:3])[:400]
    return res


# --------------------------------------------------------------------------------------------------
# kop
# --------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kop:
    def __init__(self, entry_format: str, logfile: Path) -> None:
        self.entry_format = entry_format
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.logfile = logfile
        self.proc: subprocess.Popen | None = None
        self.rc: int | None = None

    def __enter__(self) -> "Kop":
        kop_bin = REPO / ".venv" / "bin" / "kop"
        self._out = open(self.logfile, "w")
        self.proc = subprocess.Popen([str(kop_bin), "serve", "--listen", self.bootstrap, "--entry-format",
                                      self.entry_format, "--pulsar-url", PULSAR_URL, "--admin-url", ADMIN_URL],
                                     stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO)
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
                self.rc = self.proc.wait()
                self.rc = f"killed after 30 s ({self.rc})"  # type: ignore[assignment]
        elif self.proc:
            self.rc = self.proc.returncode
        self._out.close()

    def targets(self) -> dict[str, tuple[int, int | None]]:
        assert self.proc
        return {"kop": (self.proc.pid, None), "kop_loop_thread": (self.proc.pid, self.proc.pid)}

    def problems(self) -> list[str]:
        text = self.logfile.read_text(errors="replace").splitlines()
        return [ln for ln in text if re.search(r"\b(ERROR|WARNING|CRITICAL)\b|Traceback", ln)]


def delete_kop_topics(bootstrap: str, topics: list[str]) -> list[str]:
    from confluent_kafka.admin import AdminClient
    problems = []
    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep a reference until the futures are done
    for topic, fut in admin.delete_topics(topics, request_timeout=30).items():
        try:
            fut.result(60)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            problems.append(f"delete {topic}: {exc}")
    return problems


def delete_native_topic(topic: str) -> str | None:
    """Delete a partitioned topic through Pulsar's admin REST API (force: drops subscriptions too)."""
    import urllib.request
    path = topic.replace("persistent://", "")
    req = urllib.request.Request(f"{ADMIN_URL}/admin/v2/persistent/{path}/partitions?force=true", method="DELETE")
    try:
        with urllib.request.urlopen(req, timeout=60):
            return None
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"delete {topic}: {exc}"


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for _, fut in admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=30).items():
        fut.result(60)
    md = admin.list_topics(topic, timeout=30)
    got = len(md.topics[topic].partitions)
    if got != partitions:
        raise RuntimeError(f"{topic}: created with {partitions} partitions, Metadata says {got}")


_PP_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                         r"([\d.]+) ms max latency")


def kafka_producer_perf(kop: Kop, system: str, topic: str, n: int, size: int, logs: Path,
                        sampler: CpuSampler, pulsar_targets: dict, batch_size: int | None = None) -> Result:
    cmd = [str(REPO / "scripts" / "kafka-tools.sh"), "run", "org.apache.kafka.tools.ProducerPerformance",
           "--topic", topic, "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
           "--producer-props", f"bootstrap.servers={kop.bootstrap}", "acks=all"]
    client, note = "kafka ProducerPerformance", "Java client 4.1.2 defaults: idempotent, linger.ms=5, batch.size=16 KiB, acks=all"
    if batch_size:
        cmd.append(f"batch.size={batch_size}")
        client += f" batch.size={batch_size // 1024}K"
        note = note.replace("batch.size=16 KiB", f"batch.size={batch_size // 1024} KiB (extra run, not a default)")
    res = Result(system, client, "produce", topic, size=size, note=note)
    rc, out, t_exit = run_tool(cmd, logs / f"{topic}-produce-java.log", 240, sampler,
                               {**kop.targets(), **pulsar_targets})
    res.cpu = sampler.summary()
    summaries = _PP_SUMMARY.findall(out)
    if rc == 0 and summaries:
        sent, rate, mbs, avg_lat, max_lat = summaries[-1]
        res.tool_reported = f"{sent} records, {rate} rec/s, {mbs} MB/s, avg latency {avg_lat} ms, max {max_lat} ms"
        res.ok, res.records = int(sent) == n, int(sent)
        res.seconds = int(sent) / float(rate) if float(rate) else 0.0
        # The sending window is not logged: take the last `seconds` before the JVM exited (+0.5 s
        # for closing the producer), which leaves out JVM start-up.
        res.cpu = sampler.summary((t_exit - res.seconds - 0.5, t_exit - 0.3))
        if int(sent) != n:
            res.note += f"; only {sent}/{n} sent"
    else:
        tail = [ln for ln in out.splitlines() if ln.strip()][-5:]
        res.note += f"; FAILED rc={rc}: " + " | ".join(tail)[:500]
    return res


def kafka_consumer_perf_probe(kop: Kop, system: str, topic: str, n: int, size: int, logs: Path,
                              sampler: CpuSampler, pulsar_targets: dict) -> Result:
    cmd = [str(REPO / "scripts" / "kafka-tools.sh"), "run", "org.apache.kafka.tools.ConsumerPerformance",
           "--bootstrap-server", kop.bootstrap, "--topic", topic, "--messages", str(n), "--timeout", "10000"]
    res = Result(system, "kafka ConsumerPerformance", "consume", topic, size=size,
                 note="always subscribes with a consumer group")
    rc, out, _ = run_tool(cmd, logs / f"{topic}-consume-java.log", 90, sampler,
                          {**kop.targets(), **pulsar_targets})
    res.cpu = sampler.summary()
    # Data line: start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance ms, fetch ms, ...
    rows = [ln.split(", ") for ln in out.splitlines() if re.match(r"^\d{4}-\d\d-\d\d .*, ", ln)]
    if rc == 0 and rows and len(rows[-1]) >= 8 and int(float(rows[-1][4])) >= n:
        row = rows[-1]
        res.ok, res.records = True, int(float(row[4]))
        res.seconds = float(row[7]) / 1000  # fetch.time.ms excludes the rebalance
        res.tool_reported = ", ".join(row)
    else:
        lines = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("start.time")]
        res.note += f"; FAILED rc={rc}: " + " | ".join(lines[:3])[:400]
    return res


def ck_produce(kop: Kop, system: str, topic: str, n: int, size: int, sampler: CpuSampler,
               pulsar_targets: dict) -> Result:
    from confluent_kafka import KafkaException, Producer
    res = Result(system, "confluent-kafka", "produce", topic, size=size,
                 note="librdkafka, acks=all, linger.ms=5, defaults otherwise (not idempotent)")
    errors: list[str] = []
    delivered = [0]

    def on_delivery(err, msg) -> None:
        if err is not None:
            if len(errors) < 5:
                errors.append(str(err))
        else:
            delivered[0] += 1

    p = Producer({"bootstrap.servers": kop.bootstrap, "acks": "all", "linger.ms": 5,
                  "error_cb": lambda e: errors.append(f"error_cb: {e}") if len(errors) < 5 else None})
    p.list_topics(topic, timeout=30)  # connect + metadata before the clock starts
    payload = os.urandom(size)
    sampler.start({"client": (os.getpid(), -1), **kop.targets(), **pulsar_targets})
    t0 = time.perf_counter()
    try:
        for _ in range(n):
            while True:
                try:
                    p.produce(topic, payload, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        left = p.flush(120)
        res.seconds = time.perf_counter() - t0
    except KafkaException as exc:
        errors.append(str(exc))
        left = -1
        res.seconds = time.perf_counter() - t0
    finally:
        res.cpu = sampler.stop()
    res.records = delivered[0]
    res.ok = delivered[0] == n and left == 0
    res.tool_reported = f"{delivered[0]} delivered"
    if not res.ok or errors:
        res.note += f"; delivered {delivered[0]}/{n}, {left} not flushed; errors: {errors[:5]}"
    return res


def ck_consume(kop: Kop, system: str, topic: str, partitions: int, n: int, size: int,
               sampler: CpuSampler, pulsar_targets: dict, producer_label: str) -> Result:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    res = Result(system, "confluent-kafka", "consume", topic, size=size,
                 note=f"assign() at OFFSET_BEGINNING, no group/commits; data written by {producer_label}")
    errors: list[str] = []
    c = Consumer({"bootstrap.servers": kop.bootstrap,
                  # confluent-kafka insists on a group.id; with assign() and no commits the group is
                  # never joined (librdkafka may still ask for a coordinator, which kop refuses).
                  "group.id": f"bench-unused-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "error_cb": lambda e: errors.append(f"error_cb: {e}") if len(errors) < 5 else None})
    c.list_topics(topic, timeout=30)
    count = nbytes = 0
    last_offset: dict[int, int] = {}
    sampler.start({"client": (os.getpid(), -1), **kop.targets(), **pulsar_targets})
    t0 = time.perf_counter()
    deadline = t0 + 180
    last_progress = t0
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        while count < n:
            now = time.perf_counter()
            if now > deadline or now - last_progress > 30:
                errors.append(f"gave up: {count}/{n} after {now - t0:.0f} s")
                break
            for m in c.consume(1000, timeout=1.0):
                if m.error():
                    if len(errors) < 5:
                        errors.append(str(m.error()))
                    continue
                count += 1
                nbytes += len(m.value() or b"")
                part, off = m.partition(), m.offset()
                if off <= last_offset.get(part, -1) and len(errors) < 5:
                    errors.append(f"offset went back on partition {part}: {last_offset[part]} -> {off}")
                last_offset[part] = off
                last_progress = time.perf_counter()
        res.seconds = time.perf_counter() - t0
    finally:
        res.cpu = sampler.stop()
        # Offsets are not contiguous in kop (they pack Pulsar positions), but the high watermark
        # must be last offset + 1 once everything is read: nothing missing at the end, nothing extra.
        for part, off in sorted(last_offset.items()):
            try:
                _, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
                if high != off + 1:
                    errors.append(f"partition {part}: high watermark {high} != last offset {off} + 1")
            except Exception as exc:  # noqa: BLE001 - recorded, not fatal
                errors.append(f"watermarks of partition {part}: {exc}")
        c.close()
    res.records = count
    res.ok = count >= n
    res.tool_reported = f"{count} records, {nbytes} value bytes, last offsets {dict(sorted(last_offset.items()))}"
    if nbytes != count * size:
        res.note += f"; value bytes {nbytes} != {count} x {size}"
    if errors:
        res.note += f"; errors: {errors[:5]}"
    return res


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------

def fmt_cpu(cpu: dict) -> str:
    order = ["client", "kop", "kop_loop_thread", "pulsar", "other", "machine_busy"]
    short = {"client": "cli", "kop": "kop", "kop_loop_thread": "loop", "pulsar": "pulsar", "other": "other",
             "machine_busy": "all"}
    return " ".join(f"{short[k]}={cpu[k]['avg']:.0f}/{cpu[k]['max']:.0f}" for k in order if k in cpu)


def table(results: list[Result]) -> str:
    head = f"{'system':<18} {'client':<37} {'phase':<8} {'records':>8} {'seconds':>8} {'records/s':>10} {'MB/s':>7}  cpu% avg/max"
    rows = [head, "-" * len(head)]
    for r in results:
        if r.ok:
            rows.append(f"{r.system:<18} {r.client:<37} {r.phase:<8} {r.records:>8} {r.seconds:>8.2f} "
                        f"{r.rate:>10.0f} {r.mib_s:>7.2f}  {fmt_cpu(r.cpu)}")
        else:
            rows.append(f"{r.system:<18} {r.client:<37} {r.phase:<8} {'FAILED':>8}  {r.note[:110]}")
    return "\n".join(rows)


def ratios(results: list[Result]) -> dict[str, float]:
    native = {r.phase: r.rate for r in results if r.system.startswith("pulsar") and r.ok}
    out = {}
    for r in results:
        if r.system.startswith("kop") and r.ok and native.get(r.phase):
            label = f"{r.system} / {r.client} / {r.phase}"
            if "written by" in r.note:
                label += " (" + r.note.split("written by ", 1)[1].split(";")[0] + " data)"
            out[label] = round(r.rate / native[r.phase], 3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--size", type=int, default=1024, help="record value size in bytes")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--formats", default="kafka,pulsar", help="kop entry formats to run, comma-separated")
    ap.add_argument("--skip-native", action="store_true")
    ap.add_argument("--keep-logs", action="store_true", help="keep the tool/kop logs directory")
    ap.add_argument("--keep-topics", action="store_true", help="do not delete the benchmark topics at the end")
    ap.add_argument("--output", help="JSON file (default benchmarks/results/rough-<date>.json)")
    args = ap.parse_args()
    n, size, parts = args.records, args.size, args.partitions

    run_id = time.strftime("%H%M%S") + "-" + uuid.uuid4().hex[:4]
    logs = Path(tempfile.mkdtemp(prefix=f"kop-bench-{run_id}-"))
    log(f"run {run_id}: {n} records x {size} B, {parts} partition(s); logs in {logs}")

    pulsar_pids = find_pulsar_pids()
    pulsar_targets = {"pulsar": (pulsar_pids[0], None)} if pulsar_pids else {}
    sampler = CpuSampler()
    results: list[Result] = []
    kop_info: dict[str, dict] = {}
    started = time.monotonic()

    if not args.skip_native:
        home = pulsar_home()
        topic = f"persistent://public/default/bench-native-{run_id}"
        for phase in ("produce", "consume"):
            log(f"native pulsar-perf {phase} on {topic}")
            r = native_phase(home, phase, topic, n, size, parts, logs, sampler, pulsar_targets)
            results.append(r)
            log(f"  -> {r.rate:.0f} rec/s ({r.seconds:.2f} s) {r.note if not r.ok else ''}")
        if not args.keep_topics:
            problem = delete_native_topic(topic)
            if problem:
                log(problem)

    for fmt in [f for f in args.formats.split(",") if f]:
        system = f"kop {fmt}-format"
        with Kop(fmt, logs / f"kop-{fmt}.log") as kop:
            log(f"{system}: kop pid {kop.proc.pid} on {kop.bootstrap}")
            t_java, t_ck = f"bench-kop-{fmt}-java-{run_id}", f"bench-kop-{fmt}-ck-{run_id}"
            t_big = f"bench-kop-{fmt}-java256k-{run_id}"
            for t in (t_java, t_ck, t_big):
                create_topic(kop.bootstrap, t, parts)
            steps = [
                ("ProducerPerformance", lambda: kafka_producer_perf(kop, system, t_java, n, size, logs, sampler,
                                                                     pulsar_targets)),
                ("ConsumerPerformance (probe)", lambda: kafka_consumer_perf_probe(kop, system, t_java, n, size, logs,
                                                                                  sampler, pulsar_targets)),
                ("confluent-kafka consume (Java-produced)", lambda: ck_consume(
                    kop, system, t_java, parts, n, size, sampler, pulsar_targets, "ProducerPerformance")),
                ("ProducerPerformance batch.size=256K", lambda: kafka_producer_perf(
                    kop, system, t_big, n, size, logs, sampler, pulsar_targets, batch_size=256 * 1024)),
                ("confluent-kafka produce", lambda: ck_produce(kop, system, t_ck, n, size, sampler, pulsar_targets)),
                ("confluent-kafka consume (librdkafka-produced)", lambda: ck_consume(
                    kop, system, t_ck, parts, n, size, sampler, pulsar_targets, "confluent-kafka")),
            ]
            for label, step in steps:
                log(f"{system}: {label}")
                try:
                    r = step()
                except Exception as exc:  # keep going: one failure should not hide the rest
                    r = Result(system, label, "?", "", size=size, note=f"FAILED: {type(exc).__name__}: {exc}")
                results.append(r)
                log(f"  -> {r.rate:.0f} rec/s ({r.seconds:.2f} s) {r.note if not r.ok else ''}")
            if not args.keep_topics:
                for problem in delete_kop_topics(kop.bootstrap, [t_java, t_ck, t_big]):
                    log(problem)
        problems = kop.problems()
        kop_info[fmt] = {"exit": kop.rc, "log_problem_lines": len(problems), "log_problems_head": problems[:20],
                         "log": str(kop.logfile)}
        log(f"{system}: kop exit {kop.rc}, {len(problems)} WARNING/ERROR lines in its log")

    total = time.monotonic() - started
    print()
    print(f"kop rough rate, {n} records x {size} B, {parts} partition(s), {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}, total {total:.0f} s")
    print("(MB/s = MiB of values; cpu% 100 = one core: cli=client, kop=kop process, loop=kop main thread, "
          "pulsar=standalone JVM, other=rest of the machine, all=machine)")
    print(table(results))
    flagged = [r for r in results if r.ok and ("errors:" in r.note or "!=" in r.note or "only" in r.note)]
    for r in flagged:
        print(f"  ! {r.system} / {r.client} / {r.phase}: {r.note}")
    rat = ratios(results)
    if rat:
        print("\nkop / native (records/s):")
        for k, v in rat.items():
            print(f"  {k:<80} {v:.2f}")
    for fmt, info in kop_info.items():
        print(f"\nkop {fmt}-format: exit {info['exit']}, {info['log_problem_lines']} WARNING/ERROR/Traceback log lines")
        for ln in info["log_problems_head"][:5]:
            print("   ", ln[:200])

    out = Path(args.output) if args.output else RESULTS / f"rough-{time.strftime('%Y-%m-%d')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run_id": run_id, "records": n, "size": size, "partitions": parts,
        "machine": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg(), "shared": True},
        "total_seconds": round(total, 1),
        "results": [r.as_json() for r in results], "ratios_kop_over_native": rat, "kop": kop_info,
    }, indent=2) + "\n")
    print(f"\nwrote {out}")
    if not args.keep_logs:
        shutil.rmtree(logs, ignore_errors=True)
    else:
        print(f"logs kept in {logs}")
    return 0 if all(r.ok for r in results if r.client != "kafka ConsumerPerformance") else 1


if __name__ == "__main__":
    sys.exit(main())
