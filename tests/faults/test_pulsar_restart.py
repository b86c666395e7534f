"""Pulsar stopped and started again under a running produce/consume stream. kop must not crash or
wedge: while Pulsar is away clients get retriable errors (or just wait), and once it is back they
recover on their own and nothing acknowledged is lost.

This Pulsar is the test's own (run dir .run/pulsar-faults, web 8083, broker 6653), so stopping it
does not disturb the suite's shared one."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from support import ROOT, CountingConsumer, unique

pytestmark = [pytest.mark.pulsar, pytest.mark.timeout(900)]

WEB, BROKER = 8083, 6653
ENV = {**os.environ, "KOP_RUN_DIR": str(ROOT / ".run" / "pulsar-faults"), "KOP_PULSAR_FRESH": "0",
       "KOP_PULSAR_ADMIN_URL": f"http://127.0.0.1:{WEB}",
       "PULSAR_EXTRA_CONF": f"webServicePort={WEB}\nbrokerServicePort={BROKER}"}
PARTITIONS = 2


def _pulsar(command: str, fresh: bool = False) -> None:
    """A restart keeps the data (that is the point); only the module's first start wipes it."""
    subprocess.run([str(ROOT / "scripts" / "pulsar.sh"), command], check=True, timeout=300,
                   env={**ENV, "KOP_PULSAR_FRESH": "1" if fresh else "0"})


@pytest.fixture(scope="module")
def own_pulsar(pulsar):
    _pulsar("start", fresh=True)
    yield
    _pulsar("stop")


def _ready(gw) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{gw.metrics_port}/ready", timeout=20) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_pulsar_restart_mid_stream_loses_nothing_acknowledged(own_pulsar, gateways, entry_format):
    gw = gateways("--entry-format", entry_format, "--admin-url", f"http://127.0.0.1:{WEB}",
                  "--pulsar-url", f"pulsar://127.0.0.1:{BROKER}")
    topic = unique("pulsar-restart")
    creator = AdminClient({"bootstrap.servers": gw.bootstrap})  # alive until the result is in
    creator.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    acked: list[bytes] = []
    failed: list[str] = []
    client_errors: list[str] = []
    producer = Producer({"bootstrap.servers": gw.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 240_000,
                         "error_cb": lambda err: client_errors.append(str(err))})

    def delivered(err, msg) -> None:
        (failed.append(str(err)) if err else acked.append(msg.value()))

    reader = CountingConsumer(gw.bootstrap, topic, **{"enable.auto.commit": True,
                                                      "error_cb": lambda err: client_errors.append(str(err))})
    reader.start()
    received = reader.received

    def produce_for(seconds: float, start: int) -> int:
        i, until = start, time.monotonic() + seconds
        while time.monotonic() < until:
            producer.produce(topic, value=b"p%d" % i, on_delivery=delivered)
            producer.poll(0)
            i += 1
            time.sleep(0.002)
        return i
    sent = produce_for(3, 0)
    stop_at = time.monotonic()
    _pulsar("stop")
    sent = produce_for(3, sent)  # into a gateway whose Pulsar is gone
    ready_while_down = _ready(gw)
    _pulsar("start")
    outage_s = time.monotonic() - stop_at
    sent = produce_for(3, sent)
    assert ready_while_down[0] == 503 and ("unhealthy" in ready_while_down[1]
                                           or "unreachable" in ready_while_down[1]), \
        f"/ready while Pulsar was down: {ready_while_down}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _ready(gw)[0] != 200:
        time.sleep(1)
    assert _ready(gw)[0] == 200, f"/ready after Pulsar came back: {_ready(gw)}"
    assert producer.flush(240) == 0, "records neither acknowledged nor failed long after Pulsar came back"
    assert gw.alive(), f"kop died while Pulsar was away:\n{gw.log()[-3000:]}"
    assert not failed, failed[:5]
    wanted = {b"p%d" % i for i in range(sent)}
    assert set(acked) == wanted
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and set(received) < wanted:
        time.sleep(0.3)
    reader.stop()
    lost = wanted - set(received)
    duplicated = sum(n - 1 for n in received.values() if n > 1)
    print(f"\n[pulsar-restart-{entry_format}] sent={sent} acked={len(acked)} consumed={sum(received.values())} "
          f"lost={len(lost)} redelivered={duplicated} outage_s={outage_s:.0f} client_errors={len(client_errors)} "
          f"e.g. {client_errors[:2]}")
    assert not lost, f"{len(lost)} acknowledged records never consumed, e.g. {sorted(lost)[:5]}"
