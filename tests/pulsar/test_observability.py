"""What an operator sees: /metrics moving during a produce/consume/group run (consumer lag included),
/health and /ready, JSON logs carrying the client, and `kop check`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from support import ROOT, admin, free_port, metric_samples, unique

pytestmark = pytest.mark.pulsar


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _value(samples: dict, name: str, **labels) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    want = {k: str(v) for k, v in labels.items()}
    return sum(v for (n, ls), v in samples.items() if n == name and want.items() <= dict(ls).items())


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_metrics_move_during_a_produce_consume_group_run_and_lag_follows_commits(gateways):
    gw = gateways("--entry-format", "pulsar", env={"KOP_METRICS_LAG_INTERVAL_S": "1",
                                                   "KOP_TOPICS_AUTO_CREATE": "false"})
    assert _get(gw.metrics_port, "/health") == (200, "ok\n")
    status, body = _get(gw.metrics_port, "/ready")
    assert status == 200 and json.loads(body) == {"ready": True, "listeners": "up", "pulsar": "ok"}, body
    topic, group = unique("observed"), unique("g")
    creator = AdminClient({"bootstrap.servers": gw.bootstrap})
    creator.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    before = metric_samples(gw.metrics_port)

    producer = Producer({"bootstrap.servers": gw.bootstrap, "linger.ms": 0})
    for i in range(20):
        producer.produce(topic, value=b"v%d" % i, partition=0)
        producer.flush(30)  # one record per request: 20 batches
    consumer = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 60
    while got < 20 and time.monotonic() < deadline:
        got += sum(1 for m in consumer.consume(50, 1.0) if m.error() is None)
    assert got == 20
    consumer.commit(asynchronous=False)
    consumer.list_topics(topic="missing-" + topic, timeout=10)  # auto-create off: an error-coded Metadata

    after = metric_samples(gw.metrics_port)
    assert _value(after, "kop_requests_total", api="Produce", error="NONE") - \
        _value(before, "kop_requests_total", api="Produce", error="NONE") >= 20
    assert _value(after, "kop_requests_total", api="Metadata", error="UNKNOWN_TOPIC_OR_PARTITION") >= 1
    assert _value(after, "kop_response_errors_total", api="Metadata", error="UNKNOWN_TOPIC_OR_PARTITION") >= 1
    assert _value(after, "kop_request_duration_seconds_count", api="Produce") >= 20
    assert _value(after, "kop_produced_records_total", topic=topic) == 20
    assert _value(after, "kop_produced_bytes_total", topic=topic) > 20 * 61
    assert _value(after, "kop_produce_batches_total", entry_format="pulsar") - \
        _value(before, "kop_produce_batches_total", entry_format="pulsar") >= 20
    assert _value(after, "kop_fetched_records_total", topic=topic) >= 20
    assert _value(after, "kop_connections", listener="PLAINTEXT") >= 2  # producer and consumer
    assert _value(after, "kop_groups", state="Stable") >= 1
    assert _value(after, "kop_group_members", group=group) == 1
    assert _value(after, "kop_group_rebalances_total", group=group) >= 1
    assert _value(after, "kop_build_info") == 1

    # Lag: committed at the end, so 0; 5 more records unconsumed make it 5; consuming and committing
    # brings it back to 0 (Pulsar's backlog of the group's subscription, within the cursor-sync delay).
    def lag() -> float | None:
        s = metric_samples(gw.metrics_port)
        key = [k for k in s if k[0] == "kop_consumer_lag_messages" and dict(k[1]).get("group") == group]
        return s[key[0]] if key else None
    assert _wait_for(lambda: lag() == 0), f"lag after the commit: {lag()}"
    for i in range(5):
        producer.produce(topic, value=b"w%d" % i, partition=0)
        producer.flush(30)
    assert _wait_for(lambda: lag() == 5), f"lag with 5 records unconsumed: {lag()}"
    got = 0
    deadline = time.monotonic() + 30
    while got < 5 and time.monotonic() < deadline:
        got += sum(1 for m in consumer.consume(50, 1.0) if m.error() is None)
    consumer.commit(asynchronous=False)
    assert _wait_for(lambda: lag() == 0), f"lag after consuming them: {lag()}"
    consumer.close()
    assert _wait_for(lambda: _value(metric_samples(gw.metrics_port), "kop_group_members", group=group) == 0)
    assert _value(metric_samples(gw.metrics_port), "kop_fetch_waits_total") > 0  # the consumer long-polled


def test_json_logs_carry_the_client(gateways):
    gw = gateways("--log-format", "json", "--log-level", "INFO")
    topic = unique("jsonlog")
    producer = Producer({"bootstrap.servers": gw.bootstrap, "client.id": "json-log-test"})
    producer.produce(topic, value=b"x")  # auto-creates the topic: logged while serving this client
    assert producer.flush(30) == 0
    lines = [line for line in gw.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, gw.log()[-2000:]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    # The Pulsar client's C++ logger writes its warnings in its own format (kop/logs.py says why).
    cpp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (WARN|ERROR) +\[")
    plain = [line for line in lines if not line.startswith("{") and not cpp.match(line)]
    assert not plain, f"lines that are not JSON: {plain[:3]}"
    with_client = [r for r in records if r.get("client_id") == "json-log-test"]
    assert with_client, "no line logged while serving the client carries it"
    assert with_client[0]["client"].startswith("127.0.0.1:")


def _kop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kop.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_kop_check_reports_every_bad_key_at_once(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('log_format = "xml"\n[server]\nlisten_port = 99999\nbogus = 1\n[metrics]\nlisten_port = "x"\n'
                   '[nosuch]\nkey = 1\n')
    result = _kop("check", "--config", str(bad))
    assert result.returncode == 2
    for problem in ("log_format", "server.listen_port", "bogus", "[metrics] listen_port", "nosuch"):
        assert problem in result.stderr, (problem, result.stderr)


def test_kop_check_reaches_pulsar_or_says_what_is_not_reachable(pulsar):
    good = _kop("check")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "handshake answered CONNECTED" in good.stdout and "Pulsar reachable" in good.stdout
    # The test Pulsar runs with the broker entry index (config/pulsar/standalone-overrides.conf).
    assert "broker entry index on" in good.stdout, good.stdout
    dead = free_port()
    bad = _kop("check", "--pulsar-url", f"pulsar://127.0.0.1:{dead}", "--admin-url", f"http://127.0.0.1:{dead}")
    assert bad.returncode == 1
    assert bad.stdout.count("PROBLEM") == 2, bad.stdout


def test_kop_standalone_uses_a_pulsar_that_answers_and_leaves_it_running(pulsar):
    import signal
    import socket
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kop.cli", "standalone", "--listen", f"127.0.0.1:{port}",
                             "--metrics-listen", f"127.0.0.1:{metrics_port}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for(lambda: _get(metrics_port, "/ready")[0] == 200 if _port_open(metrics_port) else False, 60)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "a Pulsar answers at http://127.0.0.1:8080: using it" in out, out
    assert "stopping the Pulsar" not in out
    assert admin("brokers/health") == (200, "ok"), "kop standalone stopped a Pulsar it had not started"


def test_kop_standalone_does_not_start_a_local_pulsar_for_a_remote_url():
    result = _kop("standalone", "--admin-url", "http://192.0.2.1:8080", "--pulsar-url", "pulsar://192.0.2.1:6650")
    assert result.returncode == 1
    assert "only starts one on this machine" in result.stdout + result.stderr


def _port_open(port: int) -> bool:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
