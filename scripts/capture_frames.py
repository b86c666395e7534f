#!/usr/bin/env python3
"""Capture the request frames real Kafka clients send, into tests/data/frames/ (tests/unit/test_captured_frames.py).

    .venv/bin/python scripts/capture_frames.py [--clients java,librdkafka,kafka-python,aiokafka,franz-go]

Needs the Pulsar of `make pulsar-start` (127.0.0.1:6650/8080), Java and Kafka's tools
(scripts/kafka-tools.sh fetch), `go` for franz-go (its module comes from the Go module proxy, into
the cache `make conformance` uses). A kop gateway is started on that Pulsar (system namespace
public/__kop_frames) behind a recording TCP proxy, and advertises the proxy's port, so every
connection a client opens — bootstrap, partition leaders, group coordinator — goes through it.
Each client in turn creates a topic, produces, consumes in a group, commits and runs a few admin
calls; the proxy keeps every client->kop frame. One frame per (client, API, version) is written,
the first one seen, and a second, suffixed ``-trailing``, when the client sent one with bytes after
its body (librdkafka's Metadata v13). index.json lists them, with each client's software name and
version as its ApiVersions request says it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kop.protocol import messages  # noqa: E402

OUT = REPO / "tests" / "data" / "frames"
CLIENTS = ("java", "librdkafka", "kafka-python", "aiokafka", "franz-go")
GO_ENV = {"GOMODCACHE": str(Path.home() / ".cache/kop/conformance/gomod"), "GOFLAGS": "-modcacherw",
          "GOTOOLCHAIN": "local", "GOPATH": str(Path.home() / ".cache/kop/conformance/gopath")}


def log(message: str) -> None:
    print(f"[capture] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the recording proxy ----------------------------------------------------------------------------

class Recorder:
    """A TCP proxy on its own thread and event loop: every client->server frame, labelled with the
    client being run (``current``)."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self.current = "?"
        self.frames: list[tuple[str, bytes]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.listen_port))
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        label = self.current
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def requests() -> None:
            buffer = b""
            while data := await reader.read(65536):
                up_writer.write(data)
                buffer += data
                while len(buffer) >= 4 and len(buffer) >= 4 + struct.unpack_from(">i", buffer)[0]:
                    size = 4 + struct.unpack_from(">i", buffer)[0]
                    self.frames.append((label, buffer[:size]))
                    buffer = buffer[size:]
            up_writer.close()

        async def responses() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
            writer.close()

        await asyncio.gather(requests(), responses(), return_exceptions=True)


# -- the clients ----------------------------------------------------------------------------------

def java(bootstrap: str, topic: str, group: str) -> None:
    tools = str(REPO / "scripts" / "kafka-tools.sh")

    def run(main: str, *args: str, stdin: str | None = None) -> None:
        done = subprocess.run([tools, "run", main, *args], input=stdin, capture_output=True, text=True, timeout=120)
        log(f"java {main.rsplit('.', 1)[-1]} {' '.join(args[2:4])}: exit {done.returncode}")

    b = ("--bootstrap-server", bootstrap)
    run("org.apache.kafka.tools.BrokerApiVersionsCommand", *b)
    run("org.apache.kafka.tools.TopicCommand", *b, "--create", "--topic", topic, "--partitions", "2",
        "--replication-factor", "1")
    run("org.apache.kafka.tools.ConsoleProducer", *b, "--topic", topic, "--compression-codec", "gzip",
        "--property", "parse.key=true", stdin="k1\tone\nk2\ttwo\nk3\tthree\n")
    run("org.apache.kafka.tools.consumer.ConsoleConsumer", *b, "--topic", topic, "--group", group,
        "--from-beginning", "--max-messages", "3", "--timeout-ms", "30000")
    run("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", *b, "--describe", "--group", group)
    run("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", *b, "--list")
    run("kafka.admin.ConfigCommand", *b, "--entity-type", "topics", "--entity-name", topic, "--describe")
    run("kafka.admin.ConfigCommand", *b, "--entity-type", "topics", "--entity-name", topic, "--alter",
        "--add-config", "retention.ms=3600000")
    run("org.apache.kafka.tools.TopicCommand", *b, "--describe", "--topic", topic)
    run("org.apache.kafka.tools.TopicCommand", *b, "--alter", "--topic", topic, "--partitions", "3")
    run("org.apache.kafka.tools.GetOffsetShell", *b, "--topic", topic)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as offsets:
        json.dump({"partitions": [{"topic": topic, "partition": 0, "offset": 1}], "version": 1}, offsets)
        offsets.flush()
        run("org.apache.kafka.tools.DeleteRecordsCommand", *b, "--offset-json-file", offsets.name)
    run("org.apache.kafka.tools.ClusterTool", "cluster-id", *b)
    run("org.apache.kafka.tools.AclCommand", *b, "--list")
    run("org.apache.kafka.tools.ClientMetricsCommand", *b, "--list")
    run("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", *b, "--delete-offsets", "--group", group,
        "--topic", topic)
    run("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", *b, "--delete", "--group", group)
    run("org.apache.kafka.tools.TopicCommand", *b, "--delete", "--topic", topic)


def librdkafka(bootstrap: str, topic: str, group: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                       AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic,
                                       OffsetSpec, ResourcePatternType, ResourceType)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    _wait(admin.create_topics([NewTopic(topic, 2, 1)]))
    admin.list_topics(timeout=10)
    resource = ConfigResource("topic", topic)
    _wait(admin.describe_configs([resource]))
    _wait(admin.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])]))
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "zstd"})
    for i in range(3):
        producer.produce(topic, key=f"k{i}", value=b"librdkafka", headers=[("h", b"v")], partition=0)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, deadline = 0, time.monotonic() + 30
    while seen < 3 and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            seen += 1
    consumer.commit(asynchronous=False)
    consumer.close()
    _wait(admin.create_partitions([NewPartitions(topic, 3)]))
    _wait(admin.describe_cluster())
    _wait(admin.list_consumer_groups())
    _wait(admin.describe_consumer_groups([group]))
    _wait(admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.latest()}))
    _wait(admin.delete_records([TopicPartition(topic, 0, 1)]))
    _wait(admin.delete_consumer_groups([group]))
    _wait(admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                               AclOperation.ANY, AclPermissionType.ANY)))
    _wait(admin.delete_topics([topic]))


def _wait(futures) -> None:
    """Wait for a confluent-kafka admin call; kop's errors are fine here, the request is what counts."""
    for future in (futures.values() if isinstance(futures, dict) else [futures]):
        try:
            future.result(30)
        except Exception as exc:  # noqa: BLE001
            log(f"librdkafka, {sys._getframe(1).f_lineno}: {type(exc).__name__}: {exc}")


def kafka_python(bootstrap: str, topic: str, group: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ConfigResource,
                             ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic, OffsetSpec,
                             ResourcePatternFilter, ResourceType)

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    calls = [lambda: admin.create_topics([NewTopic(topic, 2, 1)]),
             lambda: admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]),
             lambda: admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                         configs={"retention.ms": "3600000"})])]
    _each(calls)
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, compression_type="gzip")
    for i in range(3):
        producer.send(topic, key=f"k{i}".encode(), value=b"kafka-python", headers=[("h", b"v")], partition=0)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    seen, deadline = 0, time.monotonic() + 30
    while seen < 3 and time.monotonic() < deadline:
        seen += sum(len(records) for records in consumer.poll(1000).values())
    consumer.commit()
    consumer.close()
    _each([lambda: admin.create_partitions({topic: NewPartitions(3)}),
           lambda: admin.describe_cluster(),
           lambda: admin.describe_topics([topic]),
           lambda: admin.describe_topic_partitions([topic]),
           lambda: admin.list_groups(),
           lambda: admin.describe_groups([group]),
           lambda: admin.list_group_offsets(group),
           lambda: admin.list_partition_offsets({TopicPartition(topic, 0): OffsetSpec.LATEST}),
           lambda: admin.delete_records({TopicPartition(topic, 0): 1}),
           lambda: admin.delete_group_offsets(group, [TopicPartition(topic, 0)]),
           lambda: admin.delete_groups([group]),
           lambda: admin.list_config_resources(),
           lambda: admin.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                                 ResourcePatternFilter(ResourceType.ANY, None,
                                                                       ACLResourcePatternType.ANY))),
           lambda: admin.delete_topics([topic])])
    admin.close()


def _each(calls) -> None:
    for call in calls:
        try:
            call()
        except Exception as exc:  # noqa: BLE001
            log(f"kafka-python: {type(exc).__name__}: {exc}")


def aiokafka(bootstrap: str, topic: str, group: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def work() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 2, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, compression_type="lz4")
        await producer.start()
        for i in range(3):
            await producer.send_and_wait(topic, key=f"k{i}".encode(), value=b"aiokafka", headers=[("h", b"v")],
                                         partition=0)
        await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        for _ in range(3):
            await asyncio.wait_for(consumer.getone(), 30)
        await consumer.commit()
        await consumer.stop()
        await admin.list_consumer_groups()
        await admin.describe_consumer_groups([group])
        await admin.delete_topics([topic])
        await admin.close()

    asyncio.run(work())


def franz_go(bootstrap: str, topic: str, group: str) -> None:
    source = REPO / "scripts" / "frames-franz"
    with tempfile.TemporaryDirectory() as build:
        binary = Path(build) / "frames-franz"
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=source, env={**os.environ, **GO_ENV}, check=True)
        done = subprocess.run([str(binary), bootstrap, topic, group], capture_output=True, text=True, timeout=120)
        log(f"franz-go: exit {done.returncode} {done.stderr.strip()[-300:]}")


RUN = {"java": java, "librdkafka": librdkafka, "kafka-python": kafka_python, "aiokafka": aiokafka, "franz-go": franz_go}


# -- what is kept -------------------------------------------------------------------------------------

def describe(frame: bytes) -> dict:
    """api key, version, the client's software (ApiVersions v3+), and the bytes after the body."""
    body = frame[4:]
    api_key, version, _ = messages.peek_header(body)
    info = {"api_key": api_key, "api": messages.api_name(api_key), "version": version, "trailing": ""}
    try:
        header, offset = messages.parse_header(body, messages.is_flexible(api_key, version))
        request = messages.decode_request(api_key, version, body, offset)
        try:
            request._header  # noqa: B018 (kafka-python's encoder reads it)
        except AttributeError:
            request._header = None
        encoded = bytes(request.encode(version=version))
    except Exception as exc:  # noqa: BLE001 (an API kop has no codec for, or refuses: kept, and said so)
        info["undecodable"] = f"{type(exc).__name__}: {exc}"
        return info
    info["client_id"] = header.client_id
    rest = body[offset:]
    if rest[:len(encoded)] == encoded:
        info["trailing"] = rest[len(encoded):].hex()
    if api_key == 18 and version >= 3:
        info["software"] = f"{request.client_software_name} {request.client_software_version}"
    return info


def _installed(client: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"{client} {version(client)} (installed; its ApiVersions names no software)"
    except PackageNotFoundError:
        return f"{client} (version unknown)"


def write(frames: list[tuple[str, bytes]]) -> None:
    kept: dict[tuple, tuple[bytes, dict]] = {}
    software: dict[str, str] = {}
    for client, frame in frames:
        info = describe(frame)
        if "software" in info:
            software.setdefault(client, info["software"])
        key = (client, info["api_key"], info["version"], bool(info["trailing"]))
        kept.setdefault(key, (frame, info))
    for client in {client for client, _ in frames} - set(software):  # ApiVersions v0-2 names no software
        software[client] = _installed(client)
    index, captured = [], {client for client, _ in frames}
    if (OUT / "index.json").exists():  # the clients not captured this time stay as they were
        previous = json.loads((OUT / "index.json").read_text())
        index = [e for e in previous["frames"] if e["client"] not in captured]
        software = {c: s for c, s in previous["clients"].items() if c not in captured} | software
    for client in captured:
        shutil.rmtree(OUT / client, ignore_errors=True)
    for (client, api_key, version, trailing), (frame, info) in sorted(kept.items()):
        name = f"{client}/{api_key:02d}-{info['api']}-v{version}{'-trailing' if trailing else ''}.bin"
        (OUT / client).mkdir(parents=True, exist_ok=True)
        (OUT / name).write_bytes(frame)
        entry = {"file": name, "client": client, "api_key": api_key, "api": info["api"], "version": version,
                 "bytes": len(frame), "trailing": info["trailing"]}
        if "undecodable" in info:
            entry["undecodable"] = info["undecodable"]
        index.append(entry)
    index.sort(key=lambda e: e["file"])
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
    (OUT / "index.json").write_text(json.dumps({
        "captured": time.strftime("%Y-%m-%d"), "kop": revision, "by": "scripts/capture_frames.py",
        "clients": software, "frames": index}, indent=1) + "\n")
    log(f"{len(index)} frames from {len(software)} clients in {OUT.relative_to(REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    args = parser.parse_args()
    kop_port, proxy_port = free_port(), free_port()
    env = {**os.environ, "KOP_PULSAR_SYSTEM_NAMESPACE": "public/__kop_frames", "PYTHONPATH": str(REPO)}
    gateway = subprocess.Popen([sys.executable, "-m", "kop.cli", "serve", "--listen", f"127.0.0.1:{kop_port}",
                                "--advertised-host", "127.0.0.1", "--advertised-port", str(proxy_port),
                                "--metrics-listen", "127.0.0.1:0", "--workers", "1"],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=open(Path(tempfile.gettempdir()) / "capture_frames_kop.log", "w"))
    recorder = Recorder(proxy_port, kop_port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", kop_port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or gateway.poll() is not None:
                    raise SystemExit("kop did not start")
                time.sleep(0.3)
        recorder.start()
        bootstrap = f"127.0.0.1:{proxy_port}"
        for client in args.clients.split(","):
            recorder.current = client
            log(f"running {client}")
            try:
                run = uuid.uuid4().hex[:6]  # names of their own: a topic deleted by an earlier run is not reused
                RUN[client](bootstrap, f"frames-{client}-{run}", f"frames-{client}-{run}")
            except Exception as exc:  # noqa: BLE001 (what it sent until then is kept)
                log(f"{client} failed: {type(exc).__name__}: {exc}")
            time.sleep(1)
    finally:
        log(f"kop's log: {Path(tempfile.gettempdir()) / 'capture_frames_kop.log'}")
        recorder.stop()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
    write(recorder.frames)


if __name__ == "__main__":
    main()
