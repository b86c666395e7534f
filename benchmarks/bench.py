#!/usr/bin/env python3
"""`make bench`: the same workloads against native Pulsar, kop (both entry formats), a native Kafka
broker and KoP, on this machine, in one run. Medians of --runs runs; ratios are taken inside the run.

    .venv/bin/python benchmarks/bench.py                 # everything (about 70 min on 2 cores)
    .venv/bin/python benchmarks/bench.py --quick         # 1 run, 1 KiB x 16 partitions, fewer records
    .venv/bin/python benchmarks/bench.py --only throughput,e2e --systems pulsar,kop-kafka

Workloads: record values of 1 KiB and 100 B, 1 and 16 partitions, acks=all. Per workload and system:
produce (unthrottled) and consume (catch-up of what was produced). Then latency at a fixed rate,
the same for every system of a workload: half of pulsar-perf's maximum for it, at most 20,000
records/s (the Python driver's comfort), records round-robin over the partitions as keyed traffic
spreads them; two phases per run, produce acknowledgements alone (``ack``) and end to end with a
consumer (``e2e``), 5 runs (``--latency-runs``). Then kop's CPU per single-record partition batch,
pulsar-format produce with 1 and 2 worker processes, scaling (kop, kafka format: 1-64 partitions,
1-16 connections) and scale (kop with 1,000 partitions in use and 10,000 connections, an active
client's latency meanwhile).

Output: progress on stderr, the tables on stdout, benchmarks/results/latest.json (every run's
figures, the medians, the machine) and benchmarks/results/latest.png (the chart). Logs of every tool
go to .run/bench/logs (kept until the next run).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ck, java_tools, latency, report, scale, steady  # noqa: E402
from harness.measure import SYSTEMS, Measurement, medians  # noqa: E402
from harness.procs import REPO, CpuSampler, log, wait_for_quiet  # noqa: E402
from harness.systems import (KafkaBroker, Kop, KopNar, Pulsar, create_kafka_topic,  # noqa: E402
                             delete_kafka_topics, delete_native_topic)

RESULTS = REPO / "benchmarks" / "results"
RUN_DIR = REPO / ".run" / "bench"
# Records per produce run, by value size, at --scale 1: enough for several seconds on this machine.
RECORDS = {1024: 100_000, 100: 300_000}
E2E_SECONDS = 8.0
E2E_MAX_RATE = 20_000
LATENCY_WORKLOADS = [(1024, 16), (100, 16), (1024, 1), (100, 1)]


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.logs = RUN_DIR / "logs"
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)
        self.sampler = CpuSampler()
        self.measurements: list[Measurement] = []
        self.endpoints: dict[str, str] = {}
        self.server_targets: dict[str, dict] = {}
        self.unavailable: dict[str, str] = {}
        self.extra: dict = {}
        self.uid = uuid.uuid4().hex[:6]

    def targets(self, system: str) -> dict:
        return {**self.server_targets.get(system, {}), **Pulsar.targets()}

    def record(self, m: Measurement) -> None:
        self.measurements.append(m)
        if m.ok:
            extra = f", p50 {m.latency_ms['p50']} ms, p99 {m.latency_ms['p99']} ms" if m.phase in ("e2e", "ack") else ""
            log(f"  {m.system:<10} {m.client:<16} {m.phase:<8} {m.rate:>10,.0f} rec/s {m.mib_s:>7.1f} MiB/s{extra}")
        else:
            log(f"  {m.system:<10} {m.client:<16} {m.phase:<8} FAILED: {m.note[-300:]}")

    def section(self, name: str, measure) -> None:
        try:
            self.extra[name] = measure()
        except Exception as exc:  # noqa: BLE001 - a failed section is a result, not the end of the run
            log(f"  {name} FAILED: {type(exc).__name__}: {exc}")
            self.extra.setdefault("failed_sections", {})[name] = f"{type(exc).__name__}: {exc}"

    # -- throughput ------------------------------------------------------------------------------

    def throughput(self, system: str, size: int, parts: int, run: int) -> None:
        n = int(RECORDS[size] * self.args.scale)
        if system == "pulsar":
            topic = f"persistent://public/default/bench-{size}-{parts}-{run}-{self.uid}"
            for phase in ("produce", "consume"):
                m = Measurement(system, "pulsar-perf", phase, size, parts, run, records=n)
                self.record(java_tools.pulsar_perf(m, topic, self.logs, self.sampler, self.targets(system)))
                if not m.ok:
                    break
            problem = delete_native_topic(topic)
            if problem:
                log(problem)
            return
        bootstrap = self.endpoints[system]
        for client in self.args.kafka_clients.split(","):
            if system == "KoP" and client == "kafka-perf":
                self.unavailable["KoP/kafka-perf"] = ("Kafka 4.1.2's Java clients cannot connect to KoP 3.1.1.1: it "
                                                      "closes the connection on ApiVersions v4")
                continue
            topic = f"bench-{system}-{client}-{size}-{parts}-{run}-{self.uid}"
            try:
                create_kafka_topic(bootstrap, topic, parts)
                ck.warm_up(bootstrap, topic, parts, size)
            except Exception as exc:  # noqa: BLE001 - recorded as a failed figure
                self.record(Measurement(system, client, "produce", size, parts, run, note=f"FAILED: topic: {exc}"))
                continue
            targets = self.targets(system)
            produced = Measurement(system, client, "produce", size, parts, run, records=n)
            if client == "kafka-perf":
                java_tools.producer_performance(produced, bootstrap, topic, self.logs, self.sampler, targets)
            else:
                ck.produce(produced, bootstrap, topic, self.sampler, targets)
            self.record(produced)
            if produced.ok:
                consumed = Measurement(system, client, "consume", size, parts, run, records=n + parts)  # + warm-up
                if client == "kafka-perf":
                    java_tools.consumer_performance(consumed, bootstrap, topic, self.logs, self.sampler, targets)
                else:
                    ck.consume(consumed, bootstrap, topic, self.sampler, targets, contiguous_offsets=system == "kafka")
                self.record(consumed)
            for problem in delete_kafka_topics(bootstrap, [topic]):
                log(problem)

    # -- end-to-end latency ----------------------------------------------------------------------

    def e2e_rate(self, size: int, parts: int) -> float:
        """Half of pulsar-perf's maximum for the workload (issue 13), at most E2E_MAX_RATE (or --e2e-rate)."""
        if self.args.e2e_rate:
            return float(self.args.e2e_rate)
        native = [f for f in medians(self.measurements) if (f.system, f.phase, f.size, f.partitions)
                  == ("pulsar", "produce", size, parts) and f.records_per_s]
        if not native:
            return 1000.0
        return float(min(E2E_MAX_RATE, int(native[0].records_per_s / 2 / 100) * 100 or 100))

    def e2e(self, system: str, size: int, parts: int, run: int, rate: float, phase: str = "e2e") -> None:
        kind = "pulsar" if system == "pulsar" else "kafka"
        m = Measurement(system, "pulsar-client" if kind == "pulsar" else "confluent-kafka", phase, size, parts, run)
        m.note = ("pulsar-client (C++ core), batching 1 ms, a producer per partition" if kind == "pulsar"
                  else "confluent-kafka, linger.ms=1, acks=all") + ", records round-robin over the partitions" + (
                      "; consumer assign() at the end" if phase == "e2e" else "; no consumer")
        if kind == "pulsar":
            topic = f"persistent://public/default/{phase}-{size}-{parts}-{run}-{self.uid}"
            scale.create_native_partitioned(topic, parts)
            endpoint = "pulsar://127.0.0.1:6650"
        else:
            # the phase in the name: a failed phase whose topic could not be deleted leaves the next alone
            topic, endpoint = f"{phase}-{system}-{size}-{parts}-{run}-{self.uid}", self.endpoints[system]
        try:
            if kind == "kafka":  # a system that cannot create the topic fails this figure, not the bench
                create_kafka_topic(endpoint, topic, parts)
                ck.warm_up(endpoint, topic, parts, size)
            latency.run(m, kind, endpoint, topic, rate, E2E_SECONDS, self.sampler, self.targets(system),
                        consume=phase == "e2e")
        except Exception as exc:  # noqa: BLE001 - recorded as a failed figure
            m.note += f"; FAILED: {type(exc).__name__}: {exc}"
        self.record(m)
        problems = [delete_native_topic(topic)] if kind == "pulsar" else delete_kafka_topics(endpoint, [topic])
        for problem in filter(None, problems):
            log(problem)

    # -- the whole run ---------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        systems = [s for s in args.systems.split(",") if s]
        workloads = [(1024, 16)] if args.quick else [(1024, 16), (1024, 1), (100, 16), (100, 1)]
        only = set(args.only.split(","))
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            stack.enter_context(Pulsar(RUN_DIR / "pulsar"))
            servers = {}
            for system in systems:  # only what this run measures is started
                if system == "kafka":
                    servers[system] = stack.enter_context(KafkaBroker(RUN_DIR / "kafka"))
                elif system.startswith("kop-"):
                    fmt = system.split("-", 1)[1]
                    servers[system] = stack.enter_context(Kop(fmt, self.logs / f"{system}.log"))
                elif system == "KoP":
                    servers[system] = stack.enter_context(KopNar())
            self.endpoints = {name: server.bootstrap for name, server in servers.items()}
            self.server_targets = {name: server.targets() for name, server in servers.items()}
            if "KoP" in servers and servers["KoP"].error:
                self.unavailable["KoP"] = servers["KoP"].error
                systems = [s for s in systems if s != "KoP"]
                log(f"KoP left out: {servers['KoP'].error}")
            log(f"waiting for the machine to settle after start-up: {wait_for_quiet():.0f} s")
            if "throughput" in only:
                for run in range(args.runs):
                    for size, parts in workloads:
                        log(f"throughput, run {run + 1}/{args.runs}: {size} B x {parts} partition(s)")
                        for system in systems:
                            self.throughput(system, size, parts, run)
            if "latency" in only:
                chosen = [tuple(int(x) for x in w.split("x")) for w in args.latency_workloads.split(",") if w]
                for size, parts in ([(1024, 16)] if args.quick else chosen or LATENCY_WORKLOADS):
                    rate = self.e2e_rate(size, parts)
                    self.extra.setdefault("latency_rates", {})[f"{size}x{parts}"] = rate
                    log(f"latency: {size} B x {parts} partition(s) at {rate:,.0f} records/s, "
                        f"{args.latency_runs} runs")
                    for run in range(args.latency_runs):
                        for system in systems:
                            for phase in ("ack", "e2e"):
                                self.e2e(system, size, parts, run, rate, phase)
            # A section that fails is recorded as failed; the run goes on and its results are written.
            if "cpu" in only and any(s.startswith("kop-") for s in systems):
                self.section("cpu_per_batch", lambda: [steady.cpu_per_batch(self.logs, fmt) for fmt in ("kafka", "pulsar")])
            if "workers" in only and "kop-pulsar" in systems:
                self.section("workers", lambda: steady.workers(self.logs, self.sampler, runs=args.runs,
                                                               records=int(RECORDS[1024] * args.scale)))
            if "scaling" in only and "kop-kafka" in servers:
                self.section("scaling", lambda: scale.scaling(
                    servers["kop-kafka"].bootstrap, servers["kop-kafka"].targets(), self.sampler, runs=args.runs,
                    quick=args.quick, scale=args.scale, logs=self.logs))
            if "memory" in only:
                rate = (self.extra.get("latency_rates") or {}).get("1024x16", args.e2e_rate or 0.0)
                self.section("memory", lambda: scale.memory(self.logs, quick=args.quick, latency_rate=rate,
                                                            sampler=self.sampler))
            self.extra["kop_log_problems"] = {name: server.problems()[:20] for name, server in servers.items()
                                              if isinstance(server, Kop)}
        return self.finish(time.monotonic() - started)

    def finish(self, seconds: float) -> int:
        figures = medians(self.measurements)
        machine = {"cpus": os.cpu_count(), "model": _cpu_model(), "memory_gib": _mem_gib(),
                   "python": platform.python_version(), "kernel": platform.release(),
                   "loadavg_end": [round(x, 2) for x in os.getloadavg()]}
        data = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine,
                "runs": self.args.runs, "scale": self.args.scale, "quick": self.args.quick,
                "total_seconds": round(seconds), "systems": SYSTEMS, "unavailable": self.unavailable,
                "figures": [report.figure_json(f) for f in figures],
                "measurements": [m.as_json() for m in self.measurements], **self.extra}
        data["targets"] = report.targets(figures, self.extra)
        out = Path(self.args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1) + "\n")
        self.render(data, figures, out)
        return 0 if all(m.ok for m in self.measurements) else 1

    @staticmethod
    def render(data: dict, figures, out: Path) -> None:
        print(report.text(data, figures))
        out.with_suffix(".md").write_text(report.markdown(data, figures))
        chart = out.with_suffix(".png")
        problem = report.chart(figures, chart, data)
        print(f"\nwrote {out}, {out.with_suffix('.md').name}" + (f" and {chart.name}" if not problem else
                                                                 f" (no chart: {problem})"))


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _mem_gib() -> float:
    try:
        return round(int(open("/proc/meminfo").readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="runs per figure; the report shows medians (default 3)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the records per run (default 1)")
    ap.add_argument("--quick", action="store_true", help="one workload (1 KiB x 16 partitions), 1 run, scale 0.3")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated, of: " + ", ".join(SYSTEMS))
    ap.add_argument("--kafka-clients", default="kafka-perf,confluent-kafka",
                    help="Kafka-protocol load generators: kafka-perf (Kafka's Java tools), confluent-kafka")
    ap.add_argument("--only", default="throughput,latency,cpu,workers,scaling,memory", help="sections to run")
    ap.add_argument("--latency-runs", type=int, default=5,
                    help="runs of each latency figure; the target holds in every one of them (default 5)")
    ap.add_argument("--e2e-rate", type=float, default=None,
                    help="records/s of the latency phases (default: half of pulsar-perf's maximum measured in this run, "
                         f"at most {E2E_MAX_RATE:,})")
    ap.add_argument("--latency-workloads", default="",
                    help="SIZExPARTITIONS,... of the latency phases (default: " +
                         ",".join(f"{s}x{p}" for s, p in LATENCY_WORKLOADS) + ")")
    ap.add_argument("--output", default=str(RESULTS / "latest.json"))
    ap.add_argument("--render", metavar="JSON", help="only re-render the report, Markdown and chart of a saved run")
    args = ap.parse_args()
    if args.render:
        data = json.loads(Path(args.render).read_text())
        measurements = [Measurement(**{k: v for k, v in m.items() if k in Measurement.__dataclass_fields__})
                        for m in data["measurements"]]
        figures = medians(measurements)
        data["targets"] = report.targets(figures, data)
        Bench.render(data, figures, Path(args.render))
        return 0
    if args.quick:
        args.runs, args.scale, args.latency_runs = 1, min(args.scale, 0.3), 1
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
