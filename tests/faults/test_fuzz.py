"""Hostile and broken input against a running kop (fuzz.py), on its PLAINTEXT listener and (a quarter
of the connections) a SASL_PLAINTEXT one: every mutated frame gets an answer or a closed connection,
a well-behaved producer and consumer keep working throughout, and kop's memory stays bounded.
FUZZ_FRAMES sets the number of frames (20,000 in `make test`; `make test-faults` sends 1,000,000).
Not KOP_*: kop would read that as a setting of its own, and refuse it."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fuzz import fuzz
from support import admin, drop_namespace, free_port, unique

pytestmark = [pytest.mark.pulsar, pytest.mark.timeout(3600)]

FRAMES = int(os.environ.get("FUZZ_FRAMES", "20000"))


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class WellBehaved(threading.Thread):
    """Produces and consumes one record at a time through the fuzzing, checking each comes back."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.stop = threading.Event()
        self.round_trips = 0
        self.errors: list[str] = []

    def run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 0})
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": unique("well-behaved"),
                             "auto.offset.reset": "earliest", "enable.auto.commit": True})
        consumer.subscribe([self.topic])
        wanted: set[bytes] = set()
        i = 0
        try:
            while not self.stop.is_set():
                value = b"ok-%d" % i
                i += 1
                producer.produce(self.topic, value=value, on_delivery=lambda err, msg: err and self.errors.append(
                    f"delivery: {err}"))
                if producer.flush(30) != 0:
                    self.errors.append("a record was not acknowledged within 30 s")
                    return
                wanted.add(value)
                deadline = time.monotonic() + 30
                while value in wanted and time.monotonic() < deadline:
                    for m in consumer.consume(100, 0.2):
                        if m.error() is None:
                            wanted.discard(m.value())
                if value in wanted:
                    self.errors.append(f"{value!r} not consumed within 30 s")
                    return
                self.round_trips += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(exc))
        finally:
            consumer.close()


def test_mutated_frames_get_an_answer_or_a_close_and_nobody_else_notices(gateways):
    namespace = unique("fuzz")
    status, body = admin(f"namespaces/public/{namespace}", "PUT", {})
    assert status in (204, 409), (status, body)
    sasl_port = free_port()  # a SASL listener too: before authentication only the SASL exchange is served
    gw = gateways("--entry-format", "pulsar", "--namespace", namespace,
                  env={"KOP_TOPICS_AUTO_CREATE": "false", "KOP_SASL_MECHANISMS": "PLAIN",
                       "KOP_SERVER_LISTENERS": f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}"})
    topic = "fuzzed"
    creator = AdminClient({"bootstrap.servers": gw.bootstrap})  # alive until the result is in
    creator.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    good = WellBehaved(gw.bootstrap, topic)
    good.start()
    try:
        assert _wait(lambda: good.round_trips >= 3 or good.errors, 60), good.errors
        rss_before = _rss_mib(gw.proc.pid)
        samples: list[int] = []  # RSS every 10 s while fuzzing: does it level off?
        done = threading.Event()

        def sample() -> None:
            while True:
                samples.append(round(_rss_mib(gw.proc.pid)))
                if done.wait(10):
                    return
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            stats = asyncio.run(fuzz("127.0.0.1", [gw.port, gw.port, gw.port, sasl_port], topic, FRAMES))
        finally:
            done.set()
            sampler.join(15)
        assert gw.alive(), f"kop died under fuzzing:\n{gw.log()[-3000:]}"
        time.sleep(2)  # connections the fuzzer dropped are closed; what they held is freed
        rss_after = _rss_mib(gw.proc.pid)
        trips_during = good.round_trips
    finally:
        good.stop.set()
        good.join(60)
    print(f"\n[fuzz] frames={stats.sent} {dict(stats.outcomes)} rss_mib before={rss_before:.0f} after={rss_after:.0f} "
          f"well_behaved_round_trips={trips_during}\n[fuzz] rss_mib every 10 s: {samples}\n[fuzz] by mutation: {dict(stats.by_mutation)}")
    assert stats.sent == FRAMES
    assert not stats.unexpected, f"{len(stats.unexpected)} frames got neither answer nor close: {stats.unexpected[:5]}"
    assert not good.errors, good.errors
    assert trips_during > 3, "the well-behaved client made no progress while kop was fuzzed"
    assert rss_after < rss_before + 150, f"kop grew from {rss_before:.0f} to {rss_after:.0f} MiB"
    log = gw.log()
    for sign in ("Exception in callback", "exception was never retrieved", "Fatal error"):
        assert sign not in log, f"kop logged {sign!r}:\n{log[log.index(sign) - 200:][:3000]}"
    handler_failures = [line for line in log.splitlines() if "failed; answering UNKNOWN_SERVER_ERROR" in line
                        or "failed; closing the connection" in line]
    assert not handler_failures, f"{len(handler_failures)} handler failures, e.g. {handler_failures[:3]}"
    # Pulsar is healthy throughout: a reader that fails to open is kop's own fault (the eviction race
    # of reader_cache.py's docstring showed up here first).
    reader_failures = [line for line in log.splitlines() if "opening a reader on" in line]
    assert not reader_failures, f"{len(reader_failures)} readers failed to open, e.g. {reader_failures[:3]}"
    drop_namespace(f"public/{namespace}")


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())
