"""Kafka's own ClientCompatibilityTest (org.apache.kafka.tools, kafka-tools-4.1.2.jar).

Kafka's system tests run it against every broker version to check what the Java client 4.1.2
promises of a broker: produce and consume (with a record bigger than max.partition.fetch.bytes,
KIP-74), offsetsForTimes, the cluster id, AdminClient topic creation and listing, describeConfigs,
describeAcls, the idempotent producer, and the consumer's pause/resume and wakeup. It takes the
broker as ``--bootstrap-server`` and a flag per feature saying whether the broker has it; we claim
every feature a Kafka 4.1 broker has, for every target, so a feature kop lacks shows as a failure.
It prints ``SUCCESS.`` and exits 0, or throws naming the feature that failed.

``--num-cluster-nodes`` is the number of brokers the target's own Metadata lists (asked first with
confluent-kafka): kop with several worker processes (``server.workers``) is that many brokers by
design, and the test checks that AdminClient's describeCluster agrees with Metadata, not a count.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from . import FAIL, PASS, TIMEOUT, log
from .results import SuiteRun, TestOutcome

FEATURES = {
    "--offsets-for-times-supported": "true",
    "--cluster-id-supported": "true",
    "--expect-record-too-large-exception": "false",   # KIP-74: brokers since 0.10.1 return it anyway
    "--create-topics-supported": "true",
    "--describe-acls-supported": "true",
    "--describe-configs-supported": "true",
    "--idempotent-producer-supported": "true",
}
NAME = "ClientCompatibilityTest"


def broker_count(bootstrap: str) -> int:
    from confluent_kafka.admin import AdminClient
    return len(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).brokers)


def run(kafka_tools: Path, bootstrap: str, work: Path, budget_s: float = 300) -> SuiteRun:
    work.mkdir(parents=True, exist_ok=True)
    suite = SuiteRun("kafka-java")
    topic = f"client-compat-{uuid.uuid4().hex[:8]}"
    cmd = [str(kafka_tools), "run", "org.apache.kafka.tools.ClientCompatibilityTest", "--topic", topic,
           "--bootstrap-server", bootstrap]
    for flag, value in FEATURES.items():
        cmd += [flag, value]
    cmd += ["--num-cluster-nodes", str(broker_count(bootstrap))]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=budget_s,
                              start_new_session=True)
        output = proc.stdout + proc.stderr
        ok = proc.returncode == 0 and "SUCCESS" in proc.stdout
        outcome = PASS if ok else FAIL
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        outcome = TIMEOUT
    (work / "client-compatibility.log").write_text(output)
    lines = [l for l in output.splitlines() if l.strip() and " WARN " not in l]
    detail = "" if outcome == PASS else "\n".join(lines[-25:])
    suite.add(TestOutcome(NAME, outcome, round(time.monotonic() - start, 1), detail))
    log(f"kafka-java {NAME}: {outcome}")
    return suite.finish()
