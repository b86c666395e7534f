"""kill -9 (or SIGTERM) of kop in the middle of a produce stream, then a restart on the same address:
every record the producer was told is stored is consumed, and with idempotence on none is stored
twice - even a batch that Pulsar stored just before the kill, whose answer never reached the
producer, and which the producer therefore sends again to the restarted gateway. SIGTERM exits 0
after draining what was in flight."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from chaos import Killer
from support import unique

pytestmark = pytest.mark.pulsar

PARTITIONS = 3


def _consume_all(bootstrap: str, topic: str, expect: int, timeout: float = 60,
                 partitions: int = PARTITIONS) -> Counter[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("crash-check"),
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])  # 0: before every offset
    got: Counter[bytes] = Counter()
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        msgs = consumer.consume(1000, 0.5)
        for m in msgs:
            if m.error() is None:
                got[m.value()] += 1
        if msgs:
            idle_since = time.monotonic()
        elif sum(got.values()) >= expect and time.monotonic() - idle_since > 2:
            break  # everything is there and nothing more comes (a duplicate would have by now)
    consumer.close()
    return got


@pytest.mark.parametrize("sig, kills", [(signal.SIGKILL, 1), (signal.SIGKILL, 3), (signal.SIGTERM, 2)],
                         ids=["kill9-once", "kill9-thrice", "sigterm-twice"])
def test_restarts_mid_stream_lose_nothing_and_duplicate_nothing(gateways, entry_format, sig, kills):
    gw = gateways("--entry-format", entry_format)
    topic = unique("crash")
    creator = AdminClient({"bootstrap.servers": gw.bootstrap})  # alive until the result is in
    creator.create_topics(
        [NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    acked: list[bytes] = []
    failed: list[str] = []
    fatal: list[str] = []
    producer = Producer({"bootstrap.servers": gw.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 2, "message.timeout.ms": 120_000, "reconnect.backoff.max.ms": 500,
                         "error_cb": lambda err: err.fatal() and fatal.append(str(err))})

    def delivered(err, msg) -> None:
        (failed.append(str(err)) if err else acked.append(msg.value()))
    chaos = Killer(gateways, gw, ("--entry-format", entry_format), kills, sig=sig)
    chaos.start()
    count, quiet_after = 0, None
    while quiet_after is None or time.monotonic() < quiet_after:  # ~1,000 records/s until 1 s after the last restart
        while True:
            try:
                producer.produce(topic, value=b"c%d" % count, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        producer.poll(0)
        time.sleep(0.001)
        if quiet_after is None and not chaos.is_alive():
            quiet_after = time.monotonic() + 1
    chaos.finish()
    assert producer.flush(150) == 0, "records neither acknowledged nor failed after the restarts"
    assert not fatal, fatal
    assert len(chaos.restart_s) == kills, "the stream ended before every kill"
    got = _consume_all(chaos.current.bootstrap, topic, len(acked))
    lost = set(acked) - set(got)
    duplicated = {v: n for v, n in got.items() if n > 1}
    print(f"\n[{signal.Signals(sig).name}-{entry_format}-x{kills}] sent={count} acked={len(acked)} failed={len(failed)} "
          f"consumed={sum(got.values())} lost={len(lost)} duplicated={len(duplicated)} "
          f"restart_s={chaos.restart_s}")
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}"
    assert not duplicated, f"{len(duplicated)} records stored twice, e.g. {list(duplicated.items())[:5]}"
    if sig == signal.SIGTERM:  # a clean stop: in-flight requests drained, Pulsar producers closed
        assert chaos.exit_codes == [0] * kills, chaos.exit_codes
        for stopped in chaos.stopped_gateways:
            assert "draining in-flight requests" in stopped.log() and "stopped" in stopped.log().splitlines()[-1]


def test_fleet_failover_mid_stream_loses_nothing_and_duplicates_nothing(gateways):
    """Two gateways; the producer writes through both (Metadata spreads the partition leaders); one is
    killed. The producer moves its partitions to the survivor, which has never seen their producers:
    it reads their identities back from Pulsar, so retries of batches the dead one stored are not
    stored again."""
    fleet = {"KOP_CLUSTER_HANDOVER_DELAY_S": "1"}
    a, b = gateways("--entry-format", "kafka", env=fleet), gateways("--entry-format", "kafka", env=fleet)
    bootstrap = f"{a.bootstrap},{b.bootstrap}"
    topic = unique("failover")
    creator = AdminClient({"bootstrap.servers": bootstrap})  # alive until the result is in
    creator.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    acked: list[bytes] = []
    failed: list[str] = []
    fatal: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 2,
                         "message.timeout.ms": 120_000, "topic.metadata.refresh.interval.ms": 1000,
                         "error_cb": lambda err: err.fatal() and fatal.append(str(err))})

    def delivered(err, msg) -> None:
        (failed.append(str(err)) if err else acked.append(msg.value()))
    count, killed_at = 0, None
    started = time.monotonic()
    while time.monotonic() - started < 8:
        producer.produce(topic, value=b"f%d" % count, on_delivery=delivered)
        count += 1
        producer.poll(0)
        time.sleep(0.001)
        if killed_at is None and time.monotonic() - started > 3:
            a.kill()
            killed_at = time.monotonic()
    assert producer.flush(150) == 0, "records neither acknowledged nor failed after the failover"
    assert not fatal and not failed, (fatal, failed[:5])
    got = _consume_all(b.bootstrap, topic, len(acked), partitions=4)
    lost = set(acked) - set(got)
    duplicated = {v: n for v, n in got.items() if n > 1}
    print(f"\n[fleet-failover] sent={count} acked={len(acked)} consumed={sum(got.values())} lost={len(lost)} "
          f"duplicated={len(duplicated)}")
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}"
    assert not duplicated, f"{len(duplicated)} records stored twice, e.g. {list(duplicated.items())[:5]}"
