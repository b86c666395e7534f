"""Pulsar-side faults under a running stream: a partition topic unloaded (its ownership moves, the
Pulsar client reconnects) while an idempotent producer writes and a consumer reads. Nothing
acknowledged is lost or written twice, and no producer or consumer is left stuck (KoP's issue
#1111 class of failure: a producer that never recovers after an ownership change)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from support import CountingConsumer, admin, unique

pytestmark = pytest.mark.pulsar

PARTITIONS = 4
RECORDS = 3000
UNLOAD_ROUNDS = 3


def _unload_all(topic: str) -> int:
    done = 0
    for p in range(PARTITIONS):
        status, body = admin(f"persistent/public/default/{topic}-partition-{p}/unload", "PUT")
        assert status == 204, (status, body)
        done += 1
    return done


def test_unloads_mid_stream_lose_nothing_duplicate_nothing_and_stick_nothing(gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    topic = unique("unload")
    creator = AdminClient({"bootstrap.servers": gw.bootstrap})  # alive until the result is in
    creator.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    client_errors: list[str] = []
    producer = Producer({"bootstrap.servers": gw.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "error_cb": lambda err: client_errors.append(str(err))})
    acked: list[bytes] = []
    failed: list[str] = []

    def delivered(err, msg) -> None:
        (failed.append(str(err)) if err else acked.append(msg.value()))

    reader = CountingConsumer(gw.bootstrap, topic)
    reader.start()
    received = reader.received
    unloads = 0
    started = time.monotonic()
    for i in range(RECORDS):
        producer.produce(topic, value=b"r%d" % i, on_delivery=delivered)
        producer.poll(0)
        if i and i % (RECORDS // (UNLOAD_ROUNDS + 1)) == 0 and unloads < UNLOAD_ROUNDS * PARTITIONS:
            unloads += _unload_all(topic)
        time.sleep(0.002)
    assert producer.flush(90) == 0, "the producer is stuck: records never acknowledged after the unloads"
    produce_s = time.monotonic() - started
    assert not failed, failed[:5]
    assert unloads == UNLOAD_ROUNDS * PARTITIONS
    sent = {b"r%d" % i for i in range(RECORDS)}
    assert set(acked) == sent and len(acked) == RECORDS
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and set(received) != sent:
        time.sleep(0.2)
    reader.stop()
    lost = sent - set(received)
    assert not lost, f"{len(lost)} acknowledged records never consumed (e.g. {sorted(lost)[:5]})"
    duplicated = {v: n for v, n in received.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} records read twice with idempotence on: {list(duplicated.items())[:5]}"
    print(f"\n[unload-{entry_format}] sent={RECORDS} acked={len(acked)} consumed={sum(received.values())} "
          f"lost={len(lost)} duplicated={len(duplicated)} unloads={unloads} produce_s={produce_s:.1f} "
          f"client_errors={len(client_errors)}")
