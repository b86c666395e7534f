"""confluent-kafka (librdkafka) throughput drivers, timed here.

produce: from the first ``produce()`` to the end of ``flush()``; consume: from ``assign()`` of every
partition at the beginning to the N-th record, with checks that nothing is missing or repeated.
"""

from __future__ import annotations

import os
import time
import uuid

from .measure import Measurement
from .procs import CpuSampler

PRODUCER_NOTE = "librdkafka defaults (linger.ms=5, batches up to 1 MB, not idempotent), acks=all"


def warm_up(bootstrap: str, topic: str, partitions: int, size: int) -> None:
    """One record per partition before any clock starts: the gateway's per-partition set-up (a
    Pulsar producer, the ledger) is then outside the figures, as pulsar-perf creates its producers
    before it starts timing and a Kafka broker creates partitions with the topic."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "log_level": 3})
    payload = os.urandom(size)
    for part in range(partitions):
        p.produce(topic, payload, partition=part)
    if p.flush(120) != 0:
        raise RuntimeError(f"warm-up of {topic} did not complete")


def send_all(producers: list, topic: str, payload: bytes, n: int, on_delivery) -> None:
    """``n`` records, round-robin over ``producers``, waiting for room when a queue is full."""
    for i in range(n):
        p = producers[i % len(producers)]
        while True:
            try:
                p.produce(topic, payload, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)


def produce(m: Measurement, bootstrap: str, topic: str, sampler: CpuSampler, targets: dict) -> Measurement:
    from confluent_kafka import KafkaException, Producer
    m.note = PRODUCER_NOTE
    errors: list[str] = []
    delivered = [0]

    def on_delivery(err, _msg) -> None:
        if err is not None:
            if len(errors) < 5:
                errors.append(str(err))
        else:
            delivered[0] += 1

    n, m.records = m.records, 0
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "error_cb": lambda e: errors.append(f"error_cb: {e}") if len(errors) < 5 else None})
    p.list_topics(topic, timeout=30)  # connected, metadata known, before the clock starts
    payload = os.urandom(m.size)
    sampler.start({"client": (os.getpid(), -1), **targets})
    t0 = time.perf_counter()
    left = -1
    try:
        send_all([p], topic, payload, n, on_delivery)
        left = p.flush(180)
    except KafkaException as exc:
        errors.append(str(exc))
    finally:
        m.seconds = time.perf_counter() - t0
        m.cpu = sampler.stop()
    m.records = delivered[0]
    m.ok = delivered[0] == n and left == 0
    m.tool_reported = f"{delivered[0]} delivered"
    if not m.ok or errors:
        m.note += f"; delivered {delivered[0]}/{n}, {left} not flushed; errors: {errors[:5]}"
    return m


def consume(m: Measurement, bootstrap: str, topic: str, sampler: CpuSampler, targets: dict,
            contiguous_offsets: bool) -> Measurement:
    """Read N records from the beginning of every partition.

    kop's offsets are packed Pulsar positions (not contiguous), so the check there is that offsets
    only grow and the high watermark is the last offset + 1; a Kafka broker's must also be contiguous.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    m.note = "assign() of every partition at the beginning, no group, no commits"
    errors: list[str] = []
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-unused-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "error_cb": lambda e: errors.append(f"error_cb: {e}") if len(errors) < 5 else None})
    c.list_topics(topic, timeout=30)
    n, count, nbytes = m.records, 0, 0
    last: dict[int, int] = {}
    sampler.start({"client": (os.getpid(), -1), **targets})
    t0 = time.perf_counter()
    progress = t0
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(m.partitions)])
        while count < n:
            now = time.perf_counter()
            if now - progress > 30:
                errors.append(f"gave up: {count}/{n} after {now - t0:.0f} s")
                break
            for msg in c.consume(1000, timeout=1.0):
                if msg.error():
                    if len(errors) < 5:
                        errors.append(str(msg.error()))
                    continue
                count += 1
                nbytes += len(msg.value() or b"")
                part, off = msg.partition(), msg.offset()
                prev = last.get(part, -1)
                if (off <= prev or contiguous_offsets and prev >= 0 and off != prev + 1) and len(errors) < 5:
                    errors.append(f"partition {part}: offset {prev} then {off}")
                last[part] = off
                progress = time.perf_counter()
        m.seconds = time.perf_counter() - t0
    finally:
        m.cpu = sampler.stop()
        for part, off in sorted(last.items()):
            try:
                _, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
                if high != off + 1:
                    errors.append(f"partition {part}: high watermark {high} != last offset {off} + 1")
            except Exception as exc:  # noqa: BLE001 - recorded, not fatal
                errors.append(f"watermarks of partition {part}: {exc}")
        c.close()
    m.records = count
    m.ok = count >= n and not errors and nbytes == count * m.size
    m.tool_reported = f"{count} records, {nbytes} value bytes"
    if not m.ok:
        m.note += f"; {count}/{n} records, {nbytes} value bytes; errors: {errors[:5]}"
    return m
