"""One measured figure, and the medians over repeated runs that the report shows."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

MIB = 1024 * 1024

# Systems, in the order the report lists them.
SYSTEMS = {
    "pulsar": "Pulsar (native)",
    "kop-kafka": "kop, entry format kafka",
    "kop-pulsar": "kop, entry format pulsar",
    "kafka": "Apache Kafka 4.1.2 (KRaft)",
    "KoP": "KoP (StreamNative protocol handler)",
}


@dataclass
class Measurement:
    system: str        # a key of SYSTEMS
    client: str        # pulsar-perf, kafka-perf (ProducerPerformance / ConsumerPerformance), confluent-kafka, ...
    phase: str         # produce, consume, ack (produce acknowledgements at a fixed rate), e2e
    size: int          # record value bytes
    partitions: int
    run: int
    records: int = 0
    seconds: float = 0.0
    ok: bool = False
    note: str = ""
    tool_reported: str = ""
    cpu: dict = field(default_factory=dict)
    latency_ms: dict = field(default_factory=dict)  # e2e: p50, p99, p999, max, samples
    target_rate: float = 0.0  # e2e: records/s asked for

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.ok and self.seconds > 0 else 0.0

    @property
    def mib_s(self) -> float:
        return self.rate * self.size / MIB

    def key(self) -> tuple:
        return (self.system, self.client, self.phase, self.size, self.partitions)

    def as_json(self) -> dict:
        d = asdict(self)
        d["records_per_s"] = round(self.rate, 1)
        d["mib_per_s"] = round(self.mib_s, 2)
        d["seconds"] = round(self.seconds, 3)
        return d


@dataclass
class Figure:
    """The median of the successful runs of one (system, client, phase, size, partitions)."""

    system: str
    client: str
    phase: str
    size: int
    partitions: int
    runs: int
    failed: int
    records_per_s: float = 0.0
    mib_per_s: float = 0.0
    spread: tuple[float, float] = (0.0, 0.0)  # min, max records/s
    p50_ms: float | None = None
    p99_ms: float | None = None
    target_rate: float = 0.0
    cpu: dict = field(default_factory=dict)  # median of each process's average
    notes: list[str] = field(default_factory=list)
    p99_runs: dict = field(default_factory=dict)  # ack / e2e: run number -> p99 ms


def medians(measurements: list[Measurement]) -> list[Figure]:
    groups: dict[tuple, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.key(), []).append(m)
    figures = []
    for (system, client, phase, size, parts), ms in groups.items():
        good = [m for m in ms if m.ok]
        fig = Figure(system, client, phase, size, parts, runs=len(ms), failed=len(ms) - len(good))
        fig.notes = sorted({m.note for m in ms if m.note})
        if good:
            rates = [m.rate for m in good]
            fig.records_per_s = statistics.median(rates)
            fig.mib_per_s = fig.records_per_s * size / MIB
            fig.spread = (min(rates), max(rates))
            if phase in ("e2e", "ack"):
                fig.p50_ms = statistics.median(m.latency_ms["p50"] for m in good)
                fig.p99_ms = statistics.median(m.latency_ms["p99"] for m in good)
                fig.target_rate = good[0].target_rate
                fig.p99_runs = {m.run: m.latency_ms["p99"] for m in good}
            names = {k for m in good for k in m.cpu}
            fig.cpu = {k: round(statistics.median(m.cpu[k]["avg"] for m in good if k in m.cpu), 1) for k in names}
        figures.append(fig)
    order = list(SYSTEMS)
    figures.sort(key=lambda f: (-f.size, f.partitions, ["produce", "consume", "ack", "e2e"].index(f.phase),
                                order.index(f.system), f.client))
    return figures


def find(figures: list[Figure], system: str, phase: str, size: int, partitions: int,
         client: str | None = None) -> Figure | None:
    for f in figures:
        if (f.system, f.phase, f.size, f.partitions) == (system, phase, size, partitions) and (
                client is None or f.client == client) and f.runs > f.failed:
            return f
    return None
