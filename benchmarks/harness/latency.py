"""Latency at a fixed rate: produce acknowledgements, and end to end with a consumer in a separate
process.

Records go round-robin over the partitions, record by record, as keyed traffic spreads them: every
produce request then carries a small batch for each partition (keyless records under librdkafka's
and Java's sticky partitioners fill one partition at a time, and hide per-partition costs).

Each record's value starts with its sequence number and the producer's CLOCK_MONOTONIC time at
send (one clock for every process on the machine); the consumer subtracts that from its own clock
on receipt, the producer from its own on the acknowledgement. The first second is warm-up and left
out. Both sides use the same shape for every system: Kafka protocol (kop, Kafka, KoP) through
confluent-kafka with ``linger.ms=1``, native Pulsar through pulsar-client (C++ core) with a 1 ms
batching window and one producer per partition, so the difference between two systems is the path,
not the driver. ``ack`` runs only the producer; ``e2e`` the producer and the consumer.

Run as a script, this file is the consumer process:
    latency.py consume kafka|pulsar ENDPOINT TOPIC PARTITIONS
It prints "ready" once positioned at the end, then reads "expect N T0" on stdin and prints one
JSON line with the latency summary of the records sent after T0.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
import uuid

STAMP = struct.Struct(">QQ")  # sequence number, send time (ns, CLOCK_MONOTONIC)
WARMUP_S = 1.0
QUIET_S = 20.0


def summary(latencies_ns: list[int]) -> dict:
    if not latencies_ns:
        return {"samples": 0}
    xs = sorted(latencies_ns)

    def pct(q: float) -> float:
        return round(xs[min(len(xs) - 1, int(q * len(xs)))] / 1e6, 3)
    return {"samples": len(xs), "p50": pct(0.50), "p99": pct(0.99), "p999": pct(0.999), "max": round(xs[-1] / 1e6, 3)}


# -- the consumer process ---------------------------------------------------------------------------

def _kafka_receiver(endpoint: str, topic: str, partitions: int):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": endpoint, "group.id": f"e2e-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "enable.auto.offset.store": False})
    positions = []
    for p in range(partitions):
        _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        positions.append(TopicPartition(topic, p, high))
    c.assign(positions)
    c.consume(1, timeout=0.5)  # let the fetchers start

    def receive():
        # consume(n, timeout) would wait for n records or the timeout, adding up to the timeout to
        # every latency: wait for one record, then take whatever else is already there.
        first = c.poll(0.2)
        if first is None:
            return []
        return [m.value() for m in [first, *c.consume(1000, timeout=0)] if not m.error()]
    return receive, c.close


def _pulsar_receiver(endpoint: str, topic: str, _partitions: int):
    import pulsar
    client = pulsar.Client(endpoint, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    consumer = client.subscribe(topic, f"e2e-{uuid.uuid4().hex[:8]}", consumer_type=pulsar.ConsumerType.Exclusive,
                                initial_position=pulsar.InitialPosition.Latest)

    def receive():
        try:
            return [consumer.receive(timeout_millis=200).data()]
        except pulsar.Timeout:
            return []
    return receive, client.close


def consumer_main(kind: str, endpoint: str, topic: str, partitions: int) -> None:
    receive, close = (_kafka_receiver if kind == "kafka" else _pulsar_receiver)(endpoint, topic, partitions)
    expect: list = []
    threading.Thread(target=lambda: expect.extend(int(x) for x in sys.stdin.readline().split()), daemon=True).start()
    print("ready", flush=True)
    samples: list[tuple[int, int]] = []
    seen: set[int] = set()
    duplicates = 0
    last_progress = time.monotonic()
    while True:
        values = receive()
        now = time.monotonic_ns()
        for value in values:
            seq, sent = STAMP.unpack_from(value)
            if seq in seen:
                duplicates += 1
                continue
            seen.add(seq)
            samples.append((sent, now - sent))
        if values:
            last_progress = time.monotonic()
        if expect and len(seen) >= expect[0] or time.monotonic() - last_progress > QUIET_S:
            break
    t0 = expect[1] if len(expect) > 1 else 0
    out = summary([lat for sent, lat in samples if sent >= t0])
    out.update(received=len(seen), duplicates=duplicates)
    if expect:
        out["missing"] = sorted(set(range(expect[0])) - seen)[:10]
    print(json.dumps(out), flush=True)
    close()


# -- the producer side (in the benchmark's process) --------------------------------------------------

def run(m, kind: str, endpoint: str, topic: str, rate: float, seconds: float, sampler, targets: dict,
        consume: bool = True):
    """Send ``rate`` records/s for ``seconds`` and fill ``m`` (a Measurement) with the latencies:
    end to end (``consume``) and of the produce acknowledgements (always)."""
    consumer = None
    if consume:
        consumer = subprocess.Popen([sys.executable, __file__, "consume", kind, endpoint, topic, str(m.partitions)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if consumer is not None and consumer.stdout.readline().strip() != "ready":
            m.note = f"FAILED: the consumer did not start (rc={consumer.wait()})"
            return m
        send, tick, finish = (_kafka_sender if kind == "kafka" else _pulsar_sender)(endpoint, topic, m.size,
                                                                                     m.partitions)
        ack_latencies.clear()
        watched = {"consumer": (consumer.pid, -1)} if consumer is not None else {}
        sampler.start({"client": (os.getpid(), -1), **watched, **targets})
        start = time.monotonic_ns()
        end = start + int(seconds * 1e9)
        sent = 0
        while (now := time.monotonic_ns()) < end:
            due = int((now - start) * rate / 1e9) + 1
            while sent < due:
                send(sent, STAMP.pack(sent, time.monotonic_ns()))
                sent += 1
            tick()
            time.sleep(0.0005)
        acked, errors = finish()
        m.cpu = sampler.stop()
        warm = start + int(WARMUP_S * 1e9)
        acks = summary([lat for t, lat in ack_latencies if t >= warm])
        result: dict = {}
        if consumer is not None:
            consumer.stdin.write(f"{acked} {start + int(WARMUP_S * 1e9)}\n")
            consumer.stdin.flush()
            result = json.loads(consumer.stdout.readline() or "{}")
    finally:
        if consumer is not None:
            if consumer.poll() is None:
                consumer.terminate()
            consumer.wait()
    m.target_rate = rate
    m.records, m.seconds = sent, seconds
    m.latency_ms = result if consumer is not None else dict(acks)
    if acks.get("samples"):
        m.latency_ms["produce_ack"] = acks
    m.tool_reported = f"sent {sent}, acknowledged {acked}" + (
        f", received {result.get('received')}, duplicates {result.get('duplicates')}" if consumer is not None else "")
    received_all = consumer is None or result.get("received") == acked
    m.ok = m.latency_ms.get("samples", 0) > 0 and received_all and acked == sent and not errors
    if not m.ok:
        m.note += f"; FAILED: {m.tool_reported}; errors {errors[:3]}"
    return m


ack_latencies: list[tuple[int, int]] = []  # (send time, acknowledgement latency), Kafka senders


def _kafka_sender(endpoint: str, topic: str, size: int, partitions: int):
    from confluent_kafka import Producer
    errors: list[str] = []
    acked = [0]

    def on_delivery(err, msg):
        if err is None:
            acked[0] += 1
            _seq, sent = STAMP.unpack_from(msg.value())
            ack_latencies.append((sent, time.monotonic_ns() - sent))
        elif len(errors) < 5:
            errors.append(str(err))
    p = Producer({"bootstrap.servers": endpoint, "acks": "all", "linger.ms": 1})
    p.list_topics(topic, timeout=30)
    pad = b"\0" * max(0, size - STAMP.size)

    def send(seq: int, stamp: bytes) -> None:
        while True:  # a full queue blocks the sender, as block_if_queue_full does Pulsar's: the wait is latency
            try:
                p.produce(topic, stamp + pad, partition=seq % partitions, on_delivery=on_delivery)
                return
            except BufferError:
                p.poll(0.01)

    def tick() -> None:  # serve delivery reports as they come, so their times are right
        p.poll(0)

    def finish():
        p.flush(60)
        return acked[0], errors
    return send, tick, finish


def _pulsar_sender(endpoint: str, topic: str, size: int, partitions: int):
    import pulsar
    client = pulsar.Client(endpoint, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    # One producer per partition, fed round-robin (a partitioned producer batches per partition for
    # its batching window before moving on, which is not the shape measured here).
    producers = [client.create_producer(f"{topic}-partition-{i}", batching_enabled=True,
                                        batching_max_publish_delay_ms=1, block_if_queue_full=True)
                 for i in range(partitions)]
    errors: list[str] = []
    acked = [0]
    lock = threading.Lock()
    pad = b"\0" * max(0, size - STAMP.size)

    def send(seq: int, stamp: bytes) -> None:
        sent_at = STAMP.unpack(stamp)[1]

        def on_sent(result, _msg_id) -> None:
            now = time.monotonic_ns()
            with lock:
                if result == pulsar.Result.Ok:
                    acked[0] += 1
                    ack_latencies.append((sent_at, now - sent_at))
                elif len(errors) < 5:
                    errors.append(str(result))
        producers[seq % partitions].send_async(stamp + pad, on_sent)

    def finish():
        for producer in producers:
            producer.flush()
        time.sleep(0.2)  # the last callbacks run on the client's thread
        client.close()
        return acked[0], errors
    return send, (lambda: None), finish


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "consume":
        sys.exit(__doc__)
    consumer_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
