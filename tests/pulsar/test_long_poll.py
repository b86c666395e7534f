"""Fetch long polling: a waiting fetch is answered as soon as data arrives (from a Kafka producer
through kop, or from a native Pulsar producer), an idle fetch waits ``max_wait_ms`` instead of
spinning, and ``min_bytes`` holds the answer back until enough data is there or the wait is over."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter

import pulsar
import pytest
from confluent_kafka import OFFSET_END, Consumer
from confluent_kafka import TopicPartition as CkTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from support import SERVICE_URL, free_port, raw_fetch, read_frame, unique, values_of

pytestmark = pytest.mark.pulsar
FETCH_KEY = 1


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    adm = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        adm.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        adm.close()


def end_offset(bootstrap: str, topic: str, partition: int = 0) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, partition)
        return consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()


def produce_kafka(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> list[int]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    try:
        futures = [producer.send(topic, key=b"k", value=v, partition=partition) for v in values]
        producer.flush(30)
        return [f.get(30).offset for f in futures]
    finally:
        producer.close()


def produce_native(topic: str, values: list[bytes], partition: int = 0) -> None:
    client = pulsar.Client(SERVICE_URL, operation_timeout_seconds=30)
    try:
        producer = client.create_producer(f"persistent://public/default/{topic}-partition-{partition}")
        for v in values:
            producer.send(v, partition_key="k")
        producer.close()
    finally:
        client.close()


# -- (a) a waiting consumer gets a record as soon as it is written ---------------------------------

@pytest.mark.parametrize("producer", ["kafka", "native-pulsar"])
def test_waiting_consumer_is_woken_by_new_data(gateway, producer):
    """Three empty partitions in one long poll; a record written to the last one ends the wait."""
    topic = unique("lp-wake")
    create_topic(gateway.bootstrap, topic, 3)
    consumer = Consumer({"bootstrap.servers": gateway.bootstrap, "group.id": unique("unused"),
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    received: list[tuple[float, int, bytes]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            m = consumer.poll(0.05)
            if m is not None and m.error() is None:
                received.append((time.monotonic(), m.partition(), m.value()))

    try:
        consumer.assign([CkTopicPartition(topic, p, OFFSET_END) for p in range(3)])
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        time.sleep(1.5)  # the consumer is now inside a 5 s long poll on the empty partition
        assert received == []
        sent_at = time.monotonic()
        if producer == "kafka":
            produce_kafka(gateway.bootstrap, topic, [b"wake up"], partition=2)
        else:
            produce_native(topic, [b"wake up"], partition=2)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        thread.join(10)
    finally:
        consumer.close()
    assert [(p, v) for _, p, v in received] == [(2, b"wake up")]
    latency = received[0][0] - sent_at
    # Without a wake-up the record would wait for the 5 s poll to expire (~3.5 s from here).
    assert latency < 2.0, f"delivered {latency:.2f} s after the produce: the long poll was not woken"


def test_raw_fetch_returns_when_data_arrives(gateway):
    topic = unique("lp-raw")
    create_topic(gateway.bootstrap, topic)
    offset = end_offset(gateway.bootstrap, topic)
    result: dict = {}

    def fetch() -> None:
        result["elapsed"], result["part"] = raw_fetch(gateway.bootstrap, topic, offset, max_wait_ms=5000, min_bytes=1)

    thread = threading.Thread(target=fetch)
    thread.start()
    time.sleep(1.0)
    produce_native(topic, [b"late"])
    thread.join(15)
    assert values_of(result["part"].records) == [b"late"]
    assert 0.9 <= result["elapsed"] < 2.5, f"answered after {result['elapsed']:.2f} s"


# -- (b) an idle consumer does not spin ------------------------------------------------------------

def test_idle_fetch_waits_max_wait(gateway):
    topic = unique("lp-idle")
    create_topic(gateway.bootstrap, topic)
    offset = end_offset(gateway.bootstrap, topic)
    elapsed, part = raw_fetch(gateway.bootstrap, topic, offset, max_wait_ms=1000, min_bytes=1)
    assert not part.records, f"records on an empty partition: {part.records!r}"
    assert 0.9 <= elapsed < 2.0, f"an idle Fetch with max_wait_ms=1000 was answered after {elapsed:.2f} s"
    # The same on a partition that has data, fetched at its end.
    produce_kafka(gateway.bootstrap, topic, [b"a", b"b"])
    offset = end_offset(gateway.bootstrap, topic)
    elapsed, part = raw_fetch(gateway.bootstrap, topic, offset, max_wait_ms=1000, min_bytes=1)
    assert not part.records
    assert 0.9 <= elapsed < 2.0, f"a Fetch at the end offset was answered after {elapsed:.2f} s"


class FetchCountingProxy:
    """A TCP proxy in front of kop counting the requests by API key, as a server would see them
    (kop advertises the proxy's port, so every connection of the client goes through it)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.target_port: int | None = None
        self.counts: Counter[int] = Counter()
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._copy, args=(upstream, client), daemon=True).start()

    def _requests(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                frame = read_frame(src, timeout=None)
                if frame is None:
                    break
                self.counts[struct.unpack_from(">h", frame)[0]] += 1
                dst.sendall(struct.pack(">i", len(frame)) + frame)
        except OSError:
            pass
        finally:
            _shut(dst)

    @staticmethod
    def _copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(dst)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for s in self.sockets:
            _shut(s)
            s.close()


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def test_idle_consumer_does_not_busy_loop(gateways, entry_format):
    proxy = FetchCountingProxy()
    try:
        port = free_port()
        proxy.target_port = port
        gateways("--entry-format", entry_format, "--advertised-port", str(proxy.port), port=port)
        bootstrap = f"127.0.0.1:{proxy.port}"
        topic = unique("lp-busy")
        create_topic(bootstrap, topic)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                 auto_offset_reset="latest", fetch_max_wait_ms=500)
        try:
            consumer.assign([TopicPartition(topic, 0)])
            consumer.seek_to_end()
            consumer.poll(timeout_ms=100)  # settle the position (ListOffsets) before counting
            before = proxy.counts[FETCH_KEY]
            start = time.monotonic()
            records = 0
            while time.monotonic() - start < 5.0:
                records += sum(len(v) for v in consumer.poll(timeout_ms=200).values())
            fetches = proxy.counts[FETCH_KEY] - before
            latency_max = consumer.metrics()["consumer-fetch-manager-metrics"]["fetch-latency-max"]
        finally:
            consumer.close()
    finally:
        proxy.close()
    assert records == 0
    # 5 s of 500 ms long polls: about 10 fetches; a busy loop would send hundreds.
    assert 5 <= fetches <= 15, f"{fetches} Fetch requests in 5 s with fetch_max_wait_ms=500"
    assert latency_max >= 450, f"the slowest fetch took {latency_max:.0f} ms: fetches are not waiting"


# -- (c) min_bytes ---------------------------------------------------------------------------------

def test_min_bytes_waits_for_max_wait(gateway):
    topic = unique("lp-minb")
    create_topic(gateway.bootstrap, topic)
    start_offset = end_offset(gateway.bootstrap, topic)
    produce_kafka(gateway.bootstrap, topic, [b"one", b"two", b"three"])
    # min_bytes=1: answered at once.
    elapsed, part = raw_fetch(gateway.bootstrap, topic, start_offset, max_wait_ms=1500, min_bytes=1)
    assert values_of(part.records) == [b"one", b"two", b"three"]
    assert elapsed < 0.9, f"data was there, yet the Fetch took {elapsed:.2f} s"
    # min_bytes above what is there: answered at max_wait, with what there is.
    elapsed, part = raw_fetch(gateway.bootstrap, topic, start_offset, max_wait_ms=1500, min_bytes=1 << 20)
    assert values_of(part.records) == [b"one", b"two", b"three"]
    assert 1.4 <= elapsed < 2.5, f"min_bytes not reached, yet the Fetch was answered after {elapsed:.2f} s"


def test_min_bytes_reached_by_later_data_answers_early(gateway):
    topic = unique("lp-minb2")
    create_topic(gateway.bootstrap, topic)
    start_offset = end_offset(gateway.bootstrap, topic)
    produce_kafka(gateway.bootstrap, topic, [b"small"])
    result: dict = {}

    def fetch() -> None:
        result["elapsed"], result["part"] = raw_fetch(gateway.bootstrap, topic, start_offset,
                                                      max_wait_ms=6000, min_bytes=10_000)

    thread = threading.Thread(target=fetch)
    thread.start()
    time.sleep(1.0)
    big = b"x" * 20_000
    produce_kafka(gateway.bootstrap, topic, [big])
    thread.join(15)
    assert values_of(result["part"].records) == [b"small", big]
    assert 0.9 <= result["elapsed"] < 3.0, f"answered after {result['elapsed']:.2f} s (max wait 6 s)"
