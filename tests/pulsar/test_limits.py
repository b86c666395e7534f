"""Gateway-wide limits against a real kop (kop/server/limits.py): connections over the total or
per-address limit are closed as they arrive and kop keeps serving the others; idle connections
are closed after server.connections_max_idle_ms and busy ones are not; a budget of queued request
bytes far below what the producers send at once pauses reading and every request is still answered
(no deadlock) with every record stored."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from kop.protocol.records import Record, build_batch
from support import RawClient, closed_by_server, raw_request, read_frame, unique

pytestmark = pytest.mark.pulsar

API_VERSIONS_V0 = raw_request(18, 0, b"")


def _answers(sock: socket.socket) -> bool:
    sock.sendall(API_VERSIONS_V0)
    return read_frame(sock, 10) is not None


def _connect(gw) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.port), timeout=10)


def test_connections_over_the_per_address_limit_are_closed_as_they_arrive(gateways):
    gw = gateways(env={"KOP_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "3"})
    kept = [_connect(gw) for _ in range(3)]
    try:
        assert all(_answers(s) for s in kept)
        extra = _connect(gw)
        assert closed_by_server(extra, 5), "a 4th connection from the same address was served"
        extra.close()
        assert all(_answers(s) for s in kept), "the admitted connections stopped being served"
        kept.pop().close()
        time.sleep(0.3)  # kop sees the close
        replacement = _connect(gw)
        kept.append(replacement)
        assert _answers(replacement), "a connection was refused once there was room again"
    finally:
        for s in kept:
            s.close()
    assert "refusing connection from 127.0.0.1" in gw.log() and "max_connections_per_address" in gw.log()


def test_connections_over_the_total_limit_are_closed_as_they_arrive(gateways):
    gw = gateways(env={"KOP_SERVER_MAX_CONNECTIONS": "2"})
    kept = [_connect(gw) for _ in range(2)]
    try:
        assert all(_answers(s) for s in kept)
        extra = _connect(gw)
        assert closed_by_server(extra, 5)
        extra.close()
    finally:
        for s in kept:
            s.close()
    assert "(server.max_connections)" in gw.log()


def test_idle_connections_are_closed_and_busy_ones_kept(gateways):
    gw = gateways(env={"KOP_SERVER_CONNECTIONS_MAX_IDLE_MS": "1000"})
    idle, busy = _connect(gw), _connect(gw)
    try:
        assert _answers(idle) and _answers(busy)
        started = time.monotonic()
        while time.monotonic() - started < 3:  # three idle periods: the busy one asks every 0.3 s
            assert _answers(busy), "a connection in use was closed"
            time.sleep(0.3)
        assert closed_by_server(idle, 2), "an idle connection outlived connections_max_idle_ms"
        assert _answers(busy)
    finally:
        idle.close()
        busy.close()
    assert "idle for" in gw.log()


def test_a_small_request_budget_pauses_reading_and_answers_everything(gateways):
    budget = 2 * 1024 * 1024
    gw = gateways("--entry-format", "kafka", env={"KOP_SERVER_MAX_FRAME_SIZE": str(1024 * 1024),
                                                  "KOP_SERVER_QUEUED_MAX_REQUEST_BYTES": str(budget)})
    topic = unique("budget")
    admin = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    connections, per_connection = 8, 6  # ~29 MB asked for at once, against a 2 MiB budget
    value = b"v" * (600 * 1024)
    errors: list = []

    def producer(n: int) -> None:
        try:
            with RawClient(gw.bootstrap, timeout=60) as client:
                sent = []
                for i in range(per_connection):  # pipelined: all sent before any answer is read
                    batch = build_batch([Record(offset_delta=0, timestamp=int(time.time() * 1000), key=None,
                                                value=b"%d-%d-" % (n, i) + value)], base_offset=0)
                    sent.append(client.send(ProduceRequest(acks=-1, timeout_ms=30_000, topic_data=[
                        ProduceRequest.TopicProduceData(name=topic, partition_data=[
                            ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=batch)])]),
                        7))
                for correlation in sent:
                    frame = read_frame(client.sock, 60)
                    assert frame is not None, "connection closed"
                    assert int.from_bytes(frame[:4], "big", signed=True) == correlation
                    resp = ProduceResponse.decode(frame[4:], version=7)
                    assert resp.responses[0].partition_responses[0].error_code == 0, resp
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
    threads = [threading.Thread(target=producer, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert not any(t.is_alive() for t in threads), "a producer is still waiting for answers"
    assert "request budget full" in gw.log(), "the budget never filled: the test did not test it"
    consumer = KafkaConsumer(bootstrap_servers=gw.bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000,
                             fetch_max_bytes=50 * 1024 * 1024, max_partition_fetch_bytes=2 * 1024 * 1024)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got = {m.value.split(b"-", 2)[0] + b"-" + m.value.split(b"-", 2)[1] for m in consumer}
    consumer.close()
    assert got == {b"%d-%d" % (n, i) for n in range(connections) for i in range(per_connection)}
    with RawClient(gw.bootstrap) as client:
        assert client.call(ApiVersionsRequest(), 3, ApiVersionsResponse).error_code == 0


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def test_a_client_that_never_reads_its_fetch_answers_cannot_grow_kop(gateways):
    """80 MiB stored; a raw client pipelines 60 fetches of everything (each could answer ~50 MiB) and
    reads nothing. Without a bound kop would queue ~3 GiB of answers; it holds one or two, plus what
    its readers prefetch (made small here: 2 readers of 8 entries of ~1 MiB on the partition)."""
    from kafka.protocol.consumer import FetchRequest
    from confluent_kafka import Producer

    gw = gateways("--entry-format", "kafka", env={"KOP_FETCH_READER_PREFETCH": "8",
                                                  "KOP_FETCH_MAX_READERS_PER_PARTITION": "2"})
    topic = unique("slow-reader")
    admin = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = Producer({"bootstrap.servers": gw.bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                         "compression.type": "none"})
    value = bytes(1000)
    for i in range(80 * 1024):
        while True:
            try:
                producer.produce(topic, value=value, partition=0)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0
    time.sleep(1)
    rss_before = _rss_mib(gw.proc.pid)
    request = FetchRequest(replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=50 << 20, isolation_level=0,
                           topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
                               FetchRequest.FetchTopic.FetchPartition(partition=0, fetch_offset=0,
                                                                      partition_max_bytes=50 << 20)])])
    frame = raw_request(1, 4, bytes(request.encode(version=4)), correlation_id=1)
    slow = socket.create_connection(("127.0.0.1", gw.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    slow.settimeout(0.5)
    sent = 0
    try:
        for _ in range(60):
            try:
                slow.sendall(frame)
                sent += 1
            except (socket.timeout, BlockingIOError):
                break  # kop stopped reading this connection: the back-pressure works from here on
        time.sleep(5)
        rss_during = _rss_mib(gw.proc.pid)
        other = _connect(gw)
        assert _answers(other), "another client was not served while one stopped reading"
        other.close()
    finally:
        slow.close()
    print(f"\n[slow-reader] fetches sent={sent} rss_mib before={rss_before:.0f} while stalled={rss_during:.0f}")
    assert rss_during < rss_before + 200, f"kop grew from {rss_before:.0f} to {rss_during:.0f} MiB"
