"""Scaling and memory: does kop's throughput hold from 1 to 64 partitions and from 1 to 16 client
connections, and how much memory does it take with 1,000 partitions in use and 500 connections?

Scaling uses confluent-kafka producers (one connection each; several producers in one process, fed
round-robin) against kop's ``kafka`` entry format, 1 KiB records, acks=all.

Scale (memory) starts a kop of its own (one worker), fills a 1,000-partition topic (20 records of 1
KiB per partition), opens 10,000 extra connections from 20 loopback addresses (each sends
ApiVersions and a Metadata request for the topic, then stays open), then reads every partition with
one consumer, so that kop holds a Pulsar producer and a reader per partition; meanwhile an active
client's produce-ack and end-to-end latency are measured as in the latency section; kop's RSS is
sampled throughout (baseline after start-up, peak, end).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import struct
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from . import ck, java_tools
from .measure import Measurement
from .procs import CpuSampler, log, rss_mib
from .systems import ADMIN_URL, Kop, create_kafka_topic, delete_kafka_topics, delete_native_topic


def create_native_partitioned(topic: str, partitions: int) -> None:
    path = topic.replace("persistent://", "")
    req = urllib.request.Request(f"{ADMIN_URL}/admin/v2/persistent/{path}/partitions", method="PUT",
                                 data=json.dumps(partitions).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60):
        pass


def _produce(bootstrap: str, topic: str, records: int, size: int, connections: int) -> tuple[float, int]:
    """records/s over ``connections`` producers (first produce() to the last flush())."""
    from confluent_kafka import Producer
    delivered = [0]

    def on_delivery(err, _msg) -> None:
        if err is None:
            delivered[0] += 1
    producers = [Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5}) for _ in range(connections)]
    for p in producers:
        p.list_topics(topic, timeout=30)
    payload = os.urandom(size)
    t0 = time.perf_counter()
    ck.send_all(producers, topic, payload, records, on_delivery)
    for p in producers:
        p.flush(180)
    seconds = time.perf_counter() - t0
    for p in producers:
        p.poll(0)
    return (records / seconds if delivered[0] == records else 0.0), delivered[0]


def scaling(bootstrap: str, targets: dict, sampler: CpuSampler, runs: int, quick: bool, scale: float,
            logs: Path) -> dict:
    records = int(100_000 * scale)
    cases = [("partitions", p, 1) for p in (1, 4, 16, 64)] + [("connections", 16, c) for c in (1, 4, 16)]
    if quick:
        cases = [("partitions", p, 1) for p in (1, 64)] + [("connections", 16, c) for c in (1, 16)]
    out: dict = {"records": records, "size": 1024, "client": "confluent-kafka", "cases": []}
    for kind, parts, conns in cases:
        rates, cpu = [], []
        for run in range(runs):
            topic = f"scale-{parts}-{conns}-{run}-{uuid.uuid4().hex[:6]}"
            create_kafka_topic(bootstrap, topic, parts)
            ck.warm_up(bootstrap, topic, parts, 1024)
            sampler.start({"client": (os.getpid(), -1), **targets})
            rate, delivered = _produce(bootstrap, topic, records, 1024, conns)
            cpu.append(sampler.stop().get("server", {}).get("avg", 0.0))
            rates.append(rate)
            delete_kafka_topics(bootstrap, [topic])
            log(f"  scaling {kind}: {parts} partitions x {conns} connections: {rate:,.0f} rec/s"
                + ("" if rate else f" (only {delivered}/{records} delivered)"))
        out["cases"].append({"varies": kind, "partitions": parts, "connections": conns, "rates": rates,
                             "median": statistics.median(rates), "kop_cpu_median": statistics.median(cpu)})
    # Pulsar's own curve over the same partition counts (pulsar-perf, one producer), for reference:
    # a gateway cannot make Pulsar scale flatter than it does.
    out["pulsar_perf_partitions"] = []
    for parts in sorted({c[1] for c in cases if c[0] == "partitions"}):
        rates = []
        for run in range(runs):
            m = Measurement("pulsar", "pulsar-perf", "produce", 1024, parts, run, records=records)
            topic = f"persistent://public/default/scale-native-{parts}-{run}-{uuid.uuid4().hex[:6]}"
            java_tools.pulsar_perf(m, topic, logs, sampler, {})
            rates.append(m.rate)
            delete_native_topic(topic)
        out["pulsar_perf_partitions"].append({"partitions": parts, "rates": rates, "median": statistics.median(rates)})
        log(f"  scaling, pulsar-perf: {parts} partitions: {statistics.median(rates):,.0f} rec/s")
    for kind in ("partitions", "connections"):
        medians = [c["median"] for c in out["cases"] if c["varies"] == kind]
        if medians and min(medians) > 0:
            mid = statistics.median(medians)
            out[f"{kind}_spread"] = [round(min(medians) / mid - 1, 3), round(max(medians) / mid - 1, 3)]
    return out


def _frame(api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    head = struct.pack(">hhih", api_key, version, correlation, 3) + b"rss"
    return struct.pack(">i", len(head) + len(body)) + head + body


def _read_frame(sock: socket.socket) -> bytes:
    size = struct.unpack(">i", _recv(sock, 4))[0]
    return _recv(sock, size)


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


SOURCE_ADDRESSES = 20  # 127.0.0.1 .. 127.0.0.20: kop counts connections per client address


def _idle_connections(port: int, topic: str, count: int) -> list[socket.socket]:
    """``count`` connections that each did ApiVersions v0 and Metadata v1 for ``topic``."""
    name = topic.encode()
    metadata_v1 = struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    socks = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                     source_address=(f"127.0.0.{1 + i % SOURCE_ADDRESSES}", 0))
        s.sendall(_frame(18, 0, 1, b""))
        _read_frame(s)
        s.sendall(_frame(3, 1, 2, metadata_v1))
        _read_frame(s)
        socks.append(s)
    return socks


def memory(logs: Path, quick: bool, entry_format: str = "kafka", latency_rate: float = 0.0,
           sampler: CpuSampler | None = None) -> dict:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    partitions, conns, per_partition = (200, 1000, 20) if quick else (1000, 10_000, 20)
    out: dict = {"partitions": partitions, "connections": conns, "records_per_partition": per_partition,
                 "size": 1024, "entry_format": entry_format}
    # Kafka's own defaults would refuse the 10,000th connection from one address: room for the test.
    limits = {"KOP_SERVER_MAX_CONNECTIONS": str(conns + 100), "KOP_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "1000"}
    with Kop(entry_format, logs / f"kop-memory-{entry_format}.log", workers=1, env=limits) as kop:
        pid = kop.proc.pid
        time.sleep(2)
        out["rss_start_mib"] = rss_mib(pid)
        peak = [0.0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.25):
                peak[0] = max(peak[0], rss_mib(pid) or 0.0)
        rss_thread = threading.Thread(target=sample, daemon=True)  # not `sampler`: that is the CPU sampler
        rss_thread.start()
        topic = f"memory-{uuid.uuid4().hex[:6]}"
        t0 = time.monotonic()
        create_kafka_topic(kop.bootstrap, topic, partitions)
        producer = Producer({"bootstrap.servers": kop.bootstrap, "acks": "all", "linger.ms": 20})
        payload = os.urandom(1024)
        for p in range(partitions):
            for _ in range(per_partition):
                producer.produce(topic, payload, partition=p)
        left = producer.flush(300)
        out["produce_seconds"] = round(time.monotonic() - t0, 1)
        t1 = time.monotonic()
        socks = _idle_connections(kop.port, topic, conns)
        out["connect_seconds"] = round(time.monotonic() - t1, 1)
        out["rss_after_connections_mib"] = rss_mib(pid)
        if latency_rate and sampler is not None:  # an active client while all that is held
            out["latency"] = _active_client(kop, latency_rate, sampler)
        consumer = Consumer({"bootstrap.servers": kop.bootstrap, "group.id": f"memory-{uuid.uuid4().hex[:6]}",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        wanted, got, deadline = partitions * per_partition - left, 0, time.monotonic() + 300
        while got < wanted and time.monotonic() < deadline:
            got += sum(1 for m in consumer.consume(1000, timeout=1.0) if not m.error())
        out["consumed"], out["expected"] = got, wanted
        out["rss_in_use_mib"] = rss_mib(pid)
        time.sleep(2)
        stop.set()
        rss_thread.join()
        out["rss_peak_mib"] = round(peak[0], 1)
        out["ok"] = got == wanted and left == 0
        consumer.close()
        for s in socks:
            s.close()
        delete_kafka_topics(kop.bootstrap, [topic])
    log(f"  memory: kop RSS {out['rss_start_mib']:.0f} MiB at start, {out['rss_peak_mib']:.0f} MiB peak with "
        f"{partitions} partitions and {conns} connections ({got}/{wanted} records read back)")
    return out


def _active_client(kop: Kop, rate: float, sampler: CpuSampler) -> dict:
    """Produce-ack and end-to-end latency of one client, 1 KiB x 16 partitions, at ``rate``."""
    from . import latency
    out = {}
    for phase in ("ack", "e2e"):
        topic = f"scale-active-{phase}-{uuid.uuid4().hex[:6]}"
        create_kafka_topic(kop.bootstrap, topic, 16)
        ck.warm_up(kop.bootstrap, topic, 16, 1024)
        m = Measurement("kop-scale", "confluent-kafka", phase, 1024, 16, 0)
        latency.run(m, "kafka", kop.bootstrap, topic, rate, 8.0, sampler, kop.targets(), consume=phase == "e2e")
        out[phase] = {"ok": m.ok, "rate": rate, "p50": m.latency_ms.get("p50"), "p99": m.latency_ms.get("p99"),
                      "note": m.note[-200:]}
        delete_kafka_topics(kop.bootstrap, [topic])
    return out

