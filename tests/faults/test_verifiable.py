"""Kafka's own VerifiableProducer and VerifiableConsumer (the tools of Kafka's system tests) through
kill -9 restarts of kop: every record the producer reports acknowledged is consumed, and with
idempotence on none is consumed twice. The producer's JSON events say what was acknowledged; the
consumer runs --verbose, so every record it read is listed."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from chaos import Killer
from support import unique

pytestmark = [pytest.mark.pulsar, pytest.mark.timeout(600)]

PARTITIONS = 3
MESSAGES = 8000


def _events(out: str) -> list[dict]:
    events = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return events


def test_verifiable_producer_and_consumer_through_kill9_restarts(kafka_tools, gateways, entry_format):
    gw = gateways("--entry-format", entry_format)
    topic = unique("verifiable")
    admin = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    with tempfile.NamedTemporaryFile("w", suffix=".properties", delete=False) as conf:
        conf.write("enable.idempotence=true\nretries=2147483647\ndelivery.timeout.ms=120000\nretry.backoff.max.ms=500\n"
                   "reconnect.backoff.max.ms=500\nlinger.ms=5\n")
    producer = subprocess.Popen(
        [str(kafka_tools), "run", "org.apache.kafka.tools.VerifiableProducer", "--bootstrap-server", gw.bootstrap,
         "--topic", topic, "--max-messages", str(MESSAGES), "--throughput", "1000", "--acks", "-1",
         "--producer.config", conf.name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chaos = Killer(gateways, gw, ("--entry-format", entry_format), kills=2, every_s=2.5)
    chaos.start()
    try:
        out, err = producer.communicate(timeout=300)
    finally:
        chaos.finish()
        Path(conf.name).unlink()
    events = _events(out)
    acked = [e["value"] for e in events if e.get("name") == "producer_send_success"]
    send_errors = [e for e in events if e.get("name") == "producer_send_error"]
    assert producer.returncode == 0, f"VerifiableProducer exited with {producer.returncode}:\n{err[-3000:]}"
    assert len(chaos.restart_s) == 2, "the producer finished before both kills"

    consumer = subprocess.Popen(
        [str(kafka_tools), "run", "org.apache.kafka.tools.VerifiableConsumer", "--bootstrap-server",
         chaos.current.bootstrap, "--topic", topic, "--group-id", unique("verify"), "--max-messages",
         str(len(acked)), "--reset-policy", "earliest", "--verbose", "--enable-autocommit"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # it exits once it has read as many records as were acknowledged; fewer exist if any were lost
        consumer_out, consumer_err = consumer.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        consumer.kill()
        consumer_out, consumer_err = consumer.communicate()
    consumed = Counter(e["value"] for e in _events(consumer_out) if e.get("name") == "record_data")
    lost = set(acked) - set(consumed)
    duplicated = {v: n for v, n in consumed.items() if n > 1}
    print(f"\n[verifiable-{entry_format}] sent={MESSAGES} acked={len(acked)} send_errors={len(send_errors)} "
          f"consumed={sum(consumed.values())} lost={len(lost)} duplicated={len(duplicated)} "
          f"restart_s={chaos.restart_s}")
    assert not lost, f"{len(lost)} acknowledged records not consumed, e.g. {sorted(lost)[:5]}\n{consumer_err[-2000:]}"
    assert not duplicated, f"{len(duplicated)} records consumed twice, e.g. {list(duplicated.items())[:5]}"
    assert len(acked) + len(send_errors) == MESSAGES
