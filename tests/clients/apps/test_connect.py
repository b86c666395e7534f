"""Kafka Connect 4.1.2 through kop, unchanged: a distributed worker (ConnectDistributed) runs
FileStreamSource (a file into a topic) and FileStreamSink (the topic into another file), against
the real Pulsar.

The worker creates its three compacted internal topics (configs, offsets, status: 1, 25 and 5
partitions) and checks with DescribeConfigs that they are compact-only, forms its group with
Connect's own protocol type ``connect``, keeps its source offsets in the offsets topic and its sink
offsets as a consumer group's commits. The run: lines appended to the input file in phases; between
phases the worker is stopped (SIGTERM: it stops its tasks and commits) and started again, and the
connectors come back from the configs topic. After each phase the output file must equal the input
file: nothing lost, nothing written twice.

Quick variant (make test): the kafka entry format, 2 phases (one restart). Full (APPS_FULL=1,
make test-apps): both formats, 3 phases (two restarts), ten times the lines.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from apps import FULL, JavaApp, record, tool_output
from support import free_port, unique

pytestmark = pytest.mark.pulsar

FORMATS = ["kafka", "pulsar"] if FULL else ["kafka"]
PHASES = 3 if FULL else 2
LINES_PER_PHASE = 5000 if FULL else 500
MAIN = "org.apache.kafka.connect.cli.ConnectDistributed"


def _rest(port: int, path: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read().decode()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _until(what: str, check, timeout: float, app: JavaApp):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if not app.alive():
            raise AssertionError(f"the worker exited waiting for {what}:\n{app.log()[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s:\n{app.log()[-4000:]}")
        time.sleep(0.5)


def _connectors_running(port: int) -> bool:
    for name in ("kop-file-source", "kop-file-sink"):
        status, body = _rest(port, f"/connectors/{name}/status")
        if status != 200 or body["connector"]["state"] != "RUNNING" or not body["tasks"] \
                or any(t["state"] != "RUNNING" for t in body["tasks"]):
            return False
    return True


@pytest.mark.parametrize("entry_format", FORMATS)
def test_file_round_trip_survives_worker_restarts(gateways, kafka_apps, kafka_tools, entry_format):
    gw = gateways("--entry-format", entry_format)
    work = Path(tempfile.mkdtemp(prefix="kop-connect-"))
    source, sink = work / "in.txt", work / "out.txt"
    source.write_text("")
    group, data_topic = unique("kop-connect"), unique("connect-data")
    internal = {"config.storage.topic": f"{group}-configs", "offset.storage.topic": f"{group}-offsets",
                "status.storage.topic": f"{group}-status"}
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    client.create_topics([NewTopic(data_topic, 1, 1)])[data_topic].result(30)  # one partition: one order
    port = free_port()
    worker_properties = {
        "bootstrap.servers": gw.bootstrap, "group.id": group, **internal,
        "config.storage.replication.factor": "1", "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.flush.interval.ms": "1000", "listeners": f"http://127.0.0.1:{port}",
        "rest.advertised.host.name": "127.0.0.1", "rest.advertised.port": str(port),
        "plugin.discovery": "service_load",  # the file connectors are on the classpath; scan nothing
        # a restarted worker is a new member: have the connectors and tasks of the one that left
        # assigned at once, not after Connect's default 5-minute grace for a returning worker
        "scheduled.rebalance.max.delay.ms": "0",
    }
    (work / "worker.properties").write_text("".join(f"{k}={v}\n" for k, v in worker_properties.items()))
    worker = JavaApp(f"connect-{entry_format}", MAIN, str(work / "worker.properties"),
                     env={"KAFKA_APPS_LOG_LEVEL": "INFO"})
    measured = {"entry_format": entry_format, "phases": PHASES, "restarts": PHASES - 1, "lines": 0,
                "seconds_per_phase": []}
    written: list[str] = []
    try:
        for phase in range(PHASES):
            started = time.monotonic()
            worker.start()
            _until("the REST API", lambda: _rest(port, "/connectors")[0] == 200, 240, worker)
            if phase == 0:
                for name, config in (
                        ("kop-file-source", {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                                             "tasks.max": "1", "file": str(source), "topic": data_topic}),
                        ("kop-file-sink", {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                                           "tasks.max": "1", "file": str(sink), "topics": data_topic})):
                    _until(f"connector {name}", lambda: _rest(port, f"/connectors/{name}/config", "PUT",
                                                              config)[0] in (200, 201), 120, worker)
            _until("running connectors", lambda: _connectors_running(port), 240, worker)
            # ASCII: FileStreamSource records its position in characters and seeks in bytes
            lines = [f"phase {phase} line {i} value" for i in range(LINES_PER_PHASE)]
            with source.open("a", encoding="utf-8") as out:
                out.write("".join(line + "\n" for line in lines))
            written += lines
            _until("the whole input in the output", lambda: sink.exists() and
                   sink.read_text(encoding="utf-8").splitlines() == written, 300, worker)
            measured["seconds_per_phase"].append(round(time.monotonic() - started, 1))
            measured["lines"] += len(lines)
            assert worker.stop() in (0, 143), worker.log()[-3000:]
        assert sink.read_text(encoding="utf-8").splitlines() == written  # after the last stop, too

        # the worker's internal topics: compacted, with the partition counts Connect asks for
        resources = [ConfigResource("TOPIC", t) for t in internal.values()]
        for resource, future in client.describe_configs(resources).items():
            assert future.result(30)["cleanup.policy"].value == "compact", resource
        described = tool_output(kafka_tools, "kafka.admin.ConfigCommand", "--bootstrap-server", gw.bootstrap,
                                "--entity-type", "topics", "--entity-name", internal["offset.storage.topic"],
                                "--describe")
        assert "cleanup.policy=compact" in described, described
        topics = client.list_topics(timeout=30).topics
        assert [len(topics[t].partitions) for t in internal.values()] == [1, 25, 5]
        groups = client.list_consumer_groups().result(30).valid
        kinds = {g.group_id: g.type for g in groups}
        assert group in kinds and f"connect-kop-file-sink" in kinds, kinds
        record(f"connect-{entry_format}", measured)
    finally:
        worker.stop()
