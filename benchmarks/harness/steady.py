"""Two figures of issue 13 that need a gateway of their own: kop's CPU per single-record partition
batch, and pulsar-format produce throughput with one worker process and with two.

CPU per batch: a confluent-kafka producer at a fixed rate spreads single records round-robin over
16 partitions with ``linger.ms=0``, so nearly every partition batch holds one record (the shape of
the multi-partition stall). kop's CPU time (all its threads, from /proc) over the window is divided
by the partition batches it wrote in that window (``kop_produce_batches_total`` from its /metrics).

Workers: the same unthrottled confluent-kafka produce (1 KiB x 16 partitions) against ``kop serve
--workers 1`` and ``--workers 2``, medians of the runs.
"""

from __future__ import annotations

import os
import statistics
import time
import urllib.request
import uuid
from pathlib import Path

from . import ck
from .measure import Measurement
from .procs import CLK_TCK, CpuSampler, free_port, log, tree_ticks
from .systems import Kop, create_kafka_topic, delete_kafka_topics


def _tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants (the workers of a supervisor), in seconds."""
    return tree_ticks(pid) / CLK_TCK


def _batches(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("kop_produce_batches_total"))


def cpu_per_batch(logs: Path, entry_format: str = "kafka", rate: int = 4000, seconds: float = 10.0,
                  partitions: int = 16, linger_ms: int = 0) -> dict:
    from confluent_kafka import Producer
    metrics_port = free_port()
    out: dict = {"entry_format": entry_format, "rate": rate, "seconds": seconds, "partitions": partitions,
                 "linger_ms": linger_ms}
    with Kop(entry_format, logs / f"kop-cpu-{entry_format}.log", workers=1, metrics_port=metrics_port) as kop:
        topic = f"cpu-{entry_format}-{uuid.uuid4().hex[:6]}"
        create_kafka_topic(kop.bootstrap, topic, partitions)
        ck.warm_up(kop.bootstrap, topic, partitions, 1024)
        producer = Producer({"bootstrap.servers": kop.bootstrap, "acks": "all", "linger.ms": linger_ms})
        payload = os.urandom(1024)
        failures = [0]

        def delivered(err, _msg) -> None:
            if err is not None:
                failures[0] += 1
        # one second unmeasured, then the window
        window = None  # (start time, kop CPU seconds, batches, records sent) when the window opens
        start = time.monotonic()
        sent = 0
        measuring_from = start + 1.0
        while (now := time.monotonic()) < measuring_from + seconds:
            if window is None and now >= measuring_from:
                window = (now, _tree_cpu_seconds(kop.proc.pid), _batches(metrics_port), sent)
            due = int((now - start) * rate)
            while sent < due:
                producer.produce(topic, payload, partition=sent % partitions, on_delivery=delivered)
                sent += 1
            producer.poll(0)
            time.sleep(0.0005)
        producer.flush(60)
        window_start, cpu0, batches0, sent0 = window
        elapsed = time.monotonic() - window_start
        cpu = _tree_cpu_seconds(kop.proc.pid) - cpu0
        batches = _batches(metrics_port) - batches0
        out.update(cpu_seconds=round(cpu, 3), batches=int(batches), records=sent - sent0,
                   window_seconds=round(elapsed, 2), failures=failures[0],
                   us_per_batch=round(cpu / batches * 1e6, 1) if batches else None,
                   kop_cpu_pct=round(100 * cpu / elapsed, 1))
        delete_kafka_topics(kop.bootstrap, [topic])
    log(f"  cpu per partition batch ({entry_format} format): {out['us_per_batch']} us "
        f"({out['batches']} batches of {out['records']} records, kop at {out['kop_cpu_pct']}% of a core)")
    return out


def workers(logs: Path, sampler: CpuSampler, runs: int, records: int, entry_format: str = "pulsar") -> dict:
    out: dict = {"entry_format": entry_format, "records": records, "size": 1024, "partitions": 16, "cases": []}
    for count in (1, 2):
        rates = []
        with Kop(entry_format, logs / f"kop-workers-{count}.log", workers=count) as kop:
            for run in range(runs):
                topic = f"workers-{count}-{run}-{uuid.uuid4().hex[:6]}"
                create_kafka_topic(kop.bootstrap, topic, 16)
                ck.warm_up(kop.bootstrap, topic, 16, 1024)
                m = Measurement(f"kop-{entry_format}", "confluent-kafka", "produce", 1024, 16, run, records=records)
                ck.produce(m, kop.bootstrap, topic, sampler, kop.targets())
                rates.append(m.rate)
                delete_kafka_topics(kop.bootstrap, [topic])
                log(f"  workers {count}: {m.rate:,.0f} records/s" + ("" if m.ok else f" FAILED: {m.note[-200:]}"))
        out["cases"].append({"workers": count, "rates": rates, "median": statistics.median(rates)})
    one, two = (c["median"] for c in out["cases"])
    out["speedup"] = round(two / one, 3) if one else None
    return out
