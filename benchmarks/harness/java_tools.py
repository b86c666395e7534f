"""The Java load generators: pulsar-perf (from the Pulsar distribution) and Kafka 4.1.2's
ProducerPerformance / ConsumerPerformance (scripts/kafka-tools.sh).

Every figure leaves out JVM start-up:
- pulsar-perf produce: its log timestamps from "Created N producers" to "DONE", which it logs
  once N sends are acknowledged (its own aggregate figure includes a ~10 s shutdown wait);
  consume: "Start receiving" to "DONE";
- ProducerPerformance: its final summary line (first send to last acknowledgement);
- ConsumerPerformance: its ``fetch.time.ms`` column (from the group's first assignment to the last
  record; the group join is ``rebalance.time.ms`` and is left out).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from .measure import Measurement
from .procs import REPO, CpuSampler, run_tool
from .systems import ADMIN_URL, PULSAR_URL, Pulsar

_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[,.]\d+[+-]\d{4})")
_DONE = re.compile(r"-+ ?DONE")
_PP_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                         r"([\d.]+) ms max latency(?:, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th)?")
KAFKA_TOOLS = str(REPO / "scripts" / "kafka-tools.sh")


def _first_time(lines: list[str], needle: re.Pattern) -> dt.datetime | None:
    for line in lines:
        if needle.search(line) and (m := _TS.match(line)):
            return dt.datetime.strptime(m.group(1).replace(".", ","), "%Y-%m-%dT%H:%M:%S,%f%z")
    return None


def pulsar_perf(m: Measurement, topic: str, logs: Path, sampler: CpuSampler, targets: dict) -> Measurement:
    perf = str(Pulsar.home() / "bin" / "pulsar-perf")
    n, size = m.records, m.size
    if m.phase == "produce":
        # -r must be positive (Guava's RateLimiter): an unreachable rate means unthrottled.
        cmd = [perf, "produce", "-u", PULSAR_URL, "-au", ADMIN_URL, "-r", "10000000", "-m", str(n), "-s", str(size),
               "-np", str(m.partitions), topic]
        start = re.compile(r"Created \d+ producers")
        m.note = "Java client defaults: batching (1 ms, <= 1000 messages), 1 producer, round-robin partitions"
    else:
        cmd = [perf, "consume", "-u", PULSAR_URL, "-sp", "Earliest", "-ss", "bench-sub", "-m", str(n), topic]
        start = re.compile(r"Start receiving from")
        m.note = "Exclusive subscription from Earliest, every message acknowledged"
    m.records = 0
    rc, out, _ = run_tool(cmd, logs / f"{topic.rsplit('/', 1)[-1]}-{m.phase}-{m.run}.log", 300, sampler, targets)
    lines = out.splitlines()
    t_start, t_done = _first_time(lines, start), _first_time(lines, _DONE)
    if rc is not None and t_start and t_done:
        m.ok, m.records, m.seconds = True, n, (t_done - t_start).total_seconds()
        m.cpu = sampler.summary((t_start.timestamp(), t_done.timestamp()))
    else:
        errors = [ln for ln in lines if " ERROR " in ln or "Exception" in ln]
        m.note += f"; FAILED (rc={rc}): " + " | ".join(errors[:3])[:400]
    return m


def producer_performance(m: Measurement, bootstrap: str, topic: str, logs: Path, sampler: CpuSampler,
                         targets: dict, extra_props: list[str] = ()) -> Measurement:
    cmd = [KAFKA_TOOLS, "run", "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
           "--num-records", str(m.records), "--record-size", str(m.size), "--throughput", "-1",
           "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", *extra_props]
    m.note = "Kafka 4.1.2 Java producer defaults (idempotent, linger.ms=5, batch.size=16 KiB), acks=all" + (
        f", {' '.join(extra_props)}" if extra_props else "")
    n, m.records = m.records, 0
    rc, out, t_exit = run_tool(cmd, logs / f"{topic}-produce-{m.run}.log", 300, sampler, targets)
    summaries = _PP_SUMMARY.findall(out)
    if rc == 0 and summaries:
        sent, rate = int(summaries[-1][0]), float(summaries[-1][1])
        m.tool_reported = summaries[-1][0] + " records, " + ", ".join(
            f"{v} {u}" for v, u in zip(summaries[-1][1:], ["rec/s", "MB/s", "ms avg", "ms max", "ms p50", "ms p95",
                                                         "ms p99"]) if v)
        m.ok, m.records = sent == n, sent
        m.seconds = sent / rate if rate else 0.0
        # The sending window is not logged: the last `seconds` before the JVM exited (less ~0.3 s
        # for closing the producer) leaves out start-up.
        m.cpu = sampler.summary((t_exit - m.seconds - 0.5, t_exit - 0.3))
        if sent != n:
            m.note += f"; only {sent}/{n} sent"
    else:
        tail = [ln for ln in out.splitlines() if ln.strip()][-4:]
        m.note += f"; FAILED rc={rc}: " + " | ".join(tail)[:400]
    return m


def consumer_performance(m: Measurement, bootstrap: str, topic: str, logs: Path, sampler: CpuSampler,
                         targets: dict) -> Measurement:
    cmd = [KAFKA_TOOLS, "run", "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap,
           "--topic", topic, "--messages", str(m.records), "--timeout", "30000"]
    m.note = "Kafka 4.1.2 Java consumer defaults, a new consumer group from the earliest offset"
    n, m.records = m.records, 0
    rc, out, t_exit = run_tool(cmd, logs / f"{topic}-consume-{m.run}.log", 300, sampler, targets)
    # start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, ...
    rows = [ln.split(", ") for ln in out.splitlines() if re.match(r"^\d{4}-\d\d-\d\d .*, ", ln)]
    if rc == 0 and rows and len(rows[-1]) >= 8 and int(float(rows[-1][4])) >= n:
        row = rows[-1]
        m.ok, m.records, m.seconds = True, int(float(row[4])), float(row[7]) / 1000
        m.tool_reported = ", ".join(row)
        m.cpu = sampler.summary((t_exit - m.seconds - 0.5, t_exit - 0.3))
    else:
        lines = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("start.time")]
        m.note += f"; FAILED rc={rc}: " + " | ".join(lines[-3:])[:400]
    return m
