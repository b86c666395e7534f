"""The report: the medians table, the issue's target ratios, and the chart (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path

from .measure import SYSTEMS, Figure, find

RSS_TARGET_MIB = 250


def figure_json(f: Figure) -> dict:
    return {"system": f.system, "client": f.client, "phase": f.phase, "size": f.size, "partitions": f.partitions,
            "runs": f.runs, "failed": f.failed, "records_per_s": round(f.records_per_s, 1),
            "mib_per_s": round(f.mib_per_s, 2), "min_max_records_per_s": [round(x, 1) for x in f.spread],
            "p50_ms": f.p50_ms, "p99_ms": f.p99_ms, "target_rate": f.target_rate, "cpu_median_avg": f.cpu,
            "notes": f.notes}


def _ratio(a: Figure | None, b: Figure | None) -> float | None:
    if a is None or b is None or not b.records_per_s:
        return None
    return round(a.records_per_s / b.records_per_s, 3)


LATENCY_MARGIN_MS = 5.0
CPU_PER_BATCH_TARGET_US = 30.0
SCALING_SPREAD = 0.15


def targets(figures: list[Figure], extra: dict) -> list[dict]:
    """Issue 13's targets, each with the figures it is computed from (None: not measured)."""
    rows = []

    def add(name: str, value, goal: str, met, how: str) -> None:
        rows.append({"figure": name, "value": value, "target": goal, "met": met, "from": how})

    for size in (1024, 100):
        for system in ("kop-kafka", "kop-pulsar"):
            for phase in ("ack", "e2e"):
                kop, native = find(figures, system, phase, size, 16), find(figures, "pulsar", phase, size, 16)
                if kop is None or native is None or kop.p99_ms is None or native.p99_ms is None:
                    continue
                runs = sorted(set(kop.p99_runs) & set(native.p99_runs))
                over = [round(kop.p99_runs[r] - native.p99_runs[r], 1) for r in runs]
                failed = kop.failed + native.failed
                add(f"p99 {'produce-ack' if phase == 'ack' else 'end-to-end'} at half of pulsar-perf's rate, "
                    f"{system} - Pulsar ({size} B x 16)", max(over) if over else None,
                    f"<= {LATENCY_MARGIN_MS:g} ms in every run", bool(over) and failed == 0 and max(over) <= LATENCY_MARGIN_MS,
                    f"per run (kop - Pulsar, ms): {over}; {failed} failed runs; {kop.target_rate:,.0f} records/s")
    size, parts = 1024, 16
    native = {ph: find(figures, "pulsar", ph, size, parts) for ph in ("produce", "consume")}
    for client in ("kafka-perf", "confluent-kafka"):
        r = _ratio(find(figures, "kop-kafka", "produce", size, parts, client), native["produce"])
        add(f"produce 1 KiB x 16, kafka format / pulsar-perf, {client}", r, ">= 0.9", None if r is None else r >= 0.9,
            f"{client} through kop vs pulsar-perf")
        r = _ratio(find(figures, "kop-kafka", "produce", size, parts, client), find(figures, "KoP", "produce", size, parts, client))
        add(f"produce 1 KiB x 16, kafka format / KoP, {client}", r, ">= 1.0", None if r is None else r >= 1.0,
            "KoP 3.1.1.1, kafka entry format")
        r = _ratio(find(figures, "kop-pulsar", "produce", size, parts, client), native["produce"])
        add(f"produce 1 KiB x 16, pulsar format / pulsar-perf, {client}", r, ">= 0.7", None if r is None else r >= 0.7,
            f"{client} through kop vs pulsar-perf")
        for system in ("kop-kafka", "kop-pulsar"):
            fmt = system.split("-")[1]
            r = _ratio(find(figures, system, "consume", size, parts, client), native["consume"])
            add(f"consume 1 KiB x 16, {fmt} format / pulsar-perf, {client}", r, ">= 0.9",
                None if r is None else r >= 0.9, f"{client} through kop vs pulsar-perf consume")
            r = _ratio(find(figures, system, "consume", size, parts, client), find(figures, "KoP", "consume", size, parts, client))
            add(f"consume 1 KiB x 16, {fmt} format / KoP, {client}", r, ">= 1.0", None if r is None else r >= 1.0,
                "KoP 3.1.1.1, kafka entry format")
    for cpu in extra.get("cpu_per_batch") or []:
        value = cpu.get("us_per_batch")
        goal = f"<= {CPU_PER_BATCH_TARGET_US:g} us" if cpu["entry_format"] == "kafka" else "(reported)"
        add(f"kop CPU per single-record partition batch, {cpu['entry_format']} format", value, goal,
            (value is not None and value <= CPU_PER_BATCH_TARGET_US) if cpu["entry_format"] == "kafka" else None,
            f"{cpu['batches']} batches at {cpu['rate']} records/s over {cpu['partitions']} partitions, one worker")
    scaling = extra.get("scaling") or {}
    for kind, label in (("partitions", "1 to 64 partitions"), ("connections", "1 to 16 connections")):
        spread = scaling.get(f"{kind}_spread")
        if spread:
            add(f"kop produce throughput, {label} (spread around the median)", spread,
                f"within +-{SCALING_SPREAD:.0%}", max(abs(x) for x in spread) <= SCALING_SPREAD,
                "confluent-kafka, kafka format, 1 KiB")
    workers = extra.get("workers") or {}
    if workers.get("cases"):
        one, two = (c["median"] for c in workers["cases"])
        add("pulsar-format produce, 2 workers / 1 worker", workers.get("speedup"), "(reported)", None,
            f"{one:,.0f} -> {two:,.0f} records/s, confluent-kafka, 1 KiB x 16")
    mem = extra.get("memory") or {}
    if mem.get("rss_peak_mib"):
        add(f"kop RSS with {mem['partitions']} partitions in use and {mem['connections']} connections (one worker)",
            mem["rss_peak_mib"], f"<= {RSS_TARGET_MIB} MB", mem["rss_peak_mib"] <= RSS_TARGET_MIB,
            f"peak, MiB; {mem['consumed']}/{mem['expected']} records read back")
        active = mem.get("latency") or {}
        for phase in ("ack", "e2e"):
            native = find(figures, "pulsar", phase, 1024, 16)
            got = active.get(phase) or {}
            if native is not None and native.p99_ms is not None and got.get("p99") is not None:
                d = round(got["p99"] - native.p99_ms, 1)
                add(f"meanwhile, an active client's p99 {phase} - Pulsar's (1 KiB x 16)", d,
                    f"<= {LATENCY_MARGIN_MS:g} ms", got.get("ok") and d <= LATENCY_MARGIN_MS,
                    f"kop {got['p99']} ms vs Pulsar's median p99 {native.p99_ms} ms at {got['rate']:,.0f} records/s")
    return rows


def _cpu(f: Figure) -> str:
    names = (("server", "srv"), ("server_loop", "loop"), ("pulsar", "pulsar"), ("client", "cli"))
    return " ".join(f"{short}={f.cpu[k]:.0f}" for k, short in names if k in f.cpu)


def text(data: dict, figures: list[Figure]) -> str:
    m = data["machine"]
    lines = [f"kop benchmark, {data['date']}, {m['cpus']} CPUs ({m['model']}), {m['memory_gib']} GiB, "
             f"median of {data['runs']} run(s), {data['total_seconds']} s in all", ""]
    head = (f"{'size':>5} {'parts':>5} {'phase':<8} {'system':<11} {'client':<16} {'records/s':>10} {'MiB/s':>7} "
            f"{'vs Pulsar':>9} {'p50/p99 ms':>13}  cpu% (median of avg)")
    lines += [head, "-" * len(head)]
    for f in figures:
        if f.runs == f.failed:
            lines.append(f"{f.size:>5} {f.partitions:>5} {f.phase:<8} {f.system:<11} {f.client:<16} FAILED: "
                         + "; ".join(f.notes)[-150:])
            continue
        native = find(figures, "pulsar", f.phase, f.size, f.partitions)
        ratio = _ratio(f, native) if f.phase not in ("e2e", "ack") else None
        lat = f"{f.p50_ms:.1f}/{f.p99_ms:.1f}" if f.p99_ms is not None else ""
        lines.append(f"{f.size:>5} {f.partitions:>5} {f.phase:<8} {f.system:<11} {f.client:<16} "
                     f"{f.records_per_s:>10,.0f} {f.mib_per_s:>7.1f} {'' if ratio is None else f'{ratio:.2f}':>9} "
                     f"{lat:>13}  {_cpu(f)}" + (f"  [{f.failed} failed]" if f.failed else ""))
    scaling = data.get("scaling")
    if scaling:
        lines += ["", f"scaling (kop, kafka format, confluent-kafka producers, {scaling['records']:,} x 1 KiB, median records/s):"]
        native = {c["partitions"]: c["median"] for c in scaling.get("pulsar_perf_partitions", [])}
        for c in scaling["cases"]:
            ref = native.get(c["partitions"]) if c["varies"] == "partitions" else None
            lines.append(f"  {c['partitions']:>3} partitions x {c['connections']:>2} connections: {c['median']:>10,.0f}"
                         f"   kop cpu {c['kop_cpu_median']:.0f}%" + (f"   pulsar-perf, same partitions: {ref:,.0f}" if ref else ""))
    mem = data.get("memory")
    if mem:
        lines += ["", f"memory: kop RSS {mem['rss_start_mib']:.0f} MiB after start, {mem['rss_after_connections_mib']:.0f} MiB "
                      f"with {mem['connections']} connections, {mem['rss_peak_mib']:.0f} MiB peak with {mem['partitions']} "
                      f"partitions written and read ({mem['consumed']}/{mem['expected']} records read back)"]
    lines += ["", "targets (issue 13):"]
    for t in data["targets"]:
        met = "reported" if t["target"] == "(reported)" else {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        lines.append(f"  {t['figure']:<86} {t['value']!s:>14}  {t['target']:<12} {met:<12} {t['from']}")
    for system, why in data["unavailable"].items():
        lines.append(f"  {SYSTEMS.get(system, system)}: not measured: {why}")
    return "\n".join(lines)


def markdown(data: dict, figures: list[Figure]) -> str:
    """The medians and targets as Markdown tables (benchmarks/results/latest.md, for the README)."""
    rows = ["| size | partitions | phase | system | client | records/s | MiB/s | vs pulsar-perf | p50 / p99 ms | cpu % (median) |",
            "|---:|---:|---|---|---|---:|---:|---:|---:|---|"]
    for f in figures:
        if f.runs == f.failed:
            rows.append(f"| {f.size} | {f.partitions} | {f.phase} | {f.system} | {f.client} | failed | | | | |")
            continue
        native = find(figures, "pulsar", f.phase, f.size, f.partitions)
        ratio = _ratio(f, native) if f.phase not in ("e2e", "ack") else None
        lat = f"{f.p50_ms:.1f} / {f.p99_ms:.1f}" if f.p99_ms is not None else ""
        rate = f"{f.records_per_s:,.0f}" + (f" (min {f.spread[0]:,.0f}, max {f.spread[1]:,.0f})"
                                           if f.phase not in ("e2e", "ack") else "")
        rows.append(f"| {f.size} | {f.partitions} | {f.phase} | {f.system} | {f.client} | {rate} | {f.mib_per_s:.1f} | "
                    f"{'' if ratio is None else f'{ratio:.2f}'} | {lat} | {_cpu(f)} |")
    rows += ["", "| target (issue 13) | measured | goal | met? | from |", "|---|---:|---|---|---|"]
    for t in data["targets"]:
        met = "reported" if t["target"] == "(reported)" else {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        rows.append(f"| {t['figure']} | {t['value']} | {t['target']} | {met} | {t['from']} |")
    return "\n".join(rows) + "\n"


def chart(figures: list[Figure], path: Path, data: dict) -> str | None:
    """Throughput per workload (bars per system and client) and p99 latency; None when written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is missing ({exc}); `make bench` installs it"
    workloads = sorted({(f.size, f.partitions) for f in figures}, key=lambda w: (-w[0], -w[1]))
    series = sorted({(f.system, f.client) for f in figures if f.phase in ("produce", "consume")},
                    key=lambda s: (list(SYSTEMS).index(s[0]), s[1]))
    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    for ax, phase in zip(axes[:2], ("produce", "consume")):
        width = 0.8 / max(len(series), 1)
        for i, (system, client) in enumerate(series):
            ys = [(find(figures, system, phase, s, p, client) or Figure(system, client, phase, s, p, 0, 0)).mib_per_s
                  for s, p in workloads]
            ax.bar([w + i * width for w in range(len(workloads))], ys, width, label=f"{system} / {client}")
        ax.set_xticks([w + 0.4 - width / 2 for w in range(len(workloads))])
        ax.set_xticklabels([f"{s} B x {p}p" for s, p in workloads])
        ax.set_ylabel("MiB/s of record values (median)")
        ax.set_title(f"{phase} (acks=all)")
        ax.grid(axis="y", alpha=0.3)
    if series:
        axes[0].legend(fontsize=7)
    ax = axes[2]
    lat = sorted({f.system for f in figures if f.phase == "e2e"}, key=list(SYSTEMS).index)
    width = 0.8 / max(len(lat), 1)
    for i, system in enumerate(lat):
        ys = [(find(figures, system, "e2e", s, p) or Figure(system, "", "e2e", s, p, 0, 0)).p99_ms or 0
              for s, p in workloads]
        ax.bar([w + i * width for w in range(len(workloads))], ys, width, label=system)
    ax.set_xticks([w + 0.4 - width / 2 for w in range(len(workloads))])
    ax.set_xticklabels([f"{s} B x {p}p" for s, p in workloads])
    ax.set_ylabel("p99 end-to-end latency, ms (median, log scale)")
    ax.set_yscale("log")
    ax.set_title("end-to-end at the same fixed rate (half the slowest maximum)")
    if lat:
        ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"kop benchmark {data['date'][:10]}, {data['machine']['cpus']} CPUs, "
                 f"median of {data['runs']} run(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None
