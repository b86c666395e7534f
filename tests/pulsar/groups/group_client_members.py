"""Group members of three client libraries behind one interface, for tests/pulsar/groups/test_group_clients.py.

Each member is a thread that subscribes, polls, records every value it receives in a shared Tally,
commits synchronously after processing each batch and again when partitions are revoked (so a
rebalance alone never causes duplicates; kafka-python uses its auto-commit, which commits
synchronously before a rebalance), and tracks the partitions it owns from its rebalance callbacks.
``close()`` stops it: a last commit, then the client's own close (LeaveGroup for dynamic members).
"""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep it alive until the result is in
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors: list = []
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, key=value, value=value,
                                 on_delivery=lambda err, msg: err and errors.append(err))
                break
            except BufferError:
                producer.poll(0.1)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0 and not errors, errors[:5]


def values(prefix: str, start: int, count: int) -> list[bytes]:
    return [b"%s-%d" % (prefix.encode(), i) for i in range(start, start + count)]


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class Tally:
    """How often each value was received, and by whom."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[bytes] = Counter()
        self.by_member: dict[str, Counter[bytes]] = defaultdict(Counter)

    def add(self, member: str, received: list[bytes]) -> None:
        with self.lock:
            self.counts.update(received)
            self.by_member[member].update(received)

    def have_all(self, wanted) -> bool:
        with self.lock:
            return all(self.counts[v] for v in wanted)

    def snapshot(self) -> Counter[bytes]:
        with self.lock:
            return Counter(self.counts)

    def duplicates(self) -> dict[bytes, int]:
        with self.lock:
            return {v: n for v, n in self.counts.items() if n > 1}


@dataclass(frozen=True)
class Callback:
    at: float
    partitions: frozenset[int]
    owned_before: frozenset[int]


class Member(threading.Thread):
    kind = "?"

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, tally: Tally, *,
                 session_timeout_ms: int = 10_000, hold: bool = False, **extra) -> None:
        super().__init__(name=name, daemon=True)
        self.bootstrap, self.group, self.topic, self.tally = bootstrap, group, topic, tally
        self.session_timeout_ms = session_timeout_ms
        self.extra = extra
        self.lock = threading.Lock()
        self.owned: set[int] = set()
        self.assigns: list[Callback] = []
        self.revokes: list[Callback] = []
        self.losts: list[Callback] = []
        self.errors: list[str] = []          # exceptions that ended the member's thread
        self.client_errors: list[str] = []   # errors the client reported and survived
        self.commit_failures: list[str] = []
        self.commits = 0
        self.received = 0
        self.subscribed_at: float | None = None
        self.stop_event = threading.Event()
        self.go = threading.Event()  # aiokafka only: it reads nothing until this is set (hold=True)
        if not hold:
            self.go.set()

    # -- bookkeeping from the rebalance callbacks --------------------------------------------------

    def _assigned(self, partitions) -> None:
        partitions = frozenset(partitions)
        with self.lock:
            self.assigns.append(Callback(time.monotonic(), frozenset(partitions), frozenset(self.owned)))
            self.owned |= set(partitions)

    def _revoked(self, partitions, lost: bool = False) -> None:
        partitions = frozenset(partitions)
        with self.lock:
            (self.losts if lost else self.revokes).append(
                Callback(time.monotonic(), frozenset(partitions), frozenset(self.owned)))
            self.owned -= set(partitions)

    def owned_now(self) -> frozenset[int]:
        with self.lock:
            return frozenset(self.owned)

    def callback_counts(self) -> tuple[int, int, int]:
        with self.lock:
            return len(self.assigns), len(self.revokes), len(self.losts)

    def _record(self, received: list[bytes]) -> None:
        if received:
            self.received += len(received)
            self.tally.add(self.name, received)

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.consume_loop()
        except BaseException:  # noqa: BLE001 - reported by the test
            self.errors.append(traceback.format_exc())

    def consume_loop(self) -> None:
        raise NotImplementedError

    def close(self, timeout: float = 60) -> None:
        self.stop_event.set()
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} did not close within {timeout} s"

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name} owns {sorted(self.owned_now())}>"


class ConfluentMember(Member):
    kind = "confluent-kafka"

    def consume_loop(self) -> None:
        conf = {"bootstrap.servers": self.bootstrap, "group.id": self.group, "client.id": self.name,
                "auto.offset.reset": "earliest", "enable.auto.commit": False,
                "session.timeout.ms": self.session_timeout_ms, "heartbeat.interval.ms": 1000,
                "max.poll.interval.ms": 30_000, "error_cb": lambda err: self.client_errors.append(str(err))}
        conf.update(self.extra)
        consumer = Consumer(conf)
        self.consumer = consumer

        def on_revoke(c, partitions):
            self._commit(c)  # what was processed, before the partitions go
            self._revoked(p.partition for p in partitions)

        consumer.subscribe([self.topic], on_assign=lambda c, ps: self._assigned(p.partition for p in ps),
                           on_revoke=on_revoke,
                           on_lost=lambda c, ps: self._revoked((p.partition for p in ps), lost=True))
        self.subscribed_at = time.monotonic()
        try:
            while not self.stop_event.is_set():
                msgs = consumer.consume(500, 0.1)
                received = []
                for m in msgs:
                    if m.error():
                        self.client_errors.append(str(m.error()))
                    else:
                        received.append(m.value())
                self._record(received)
                if received:
                    self._commit(consumer)
            self._commit(consumer)
        finally:
            consumer.close()

    def _commit(self, consumer) -> None:
        try:
            consumer.commit(asynchronous=False)
            self.commits += 1
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                self.commit_failures.append(str(exc))


class KafkaPythonMember(Member):
    kind = "kafka-python"

    def consume_loop(self) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer
        from kafka.errors import KafkaError as KafkaPythonError

        member = self

        class Listener(ConsumerRebalanceListener):
            # kafka-python 3 runs the listener on its IO thread, where a blocking commit() is refused;
            # with enable_auto_commit the client itself commits synchronously before revoking.
            def on_partitions_revoked(self, revoked):
                member._revoked(tp.partition for tp in revoked)

            def on_partitions_assigned(self, assigned):
                member._assigned(tp.partition for tp in assigned)

            def on_partitions_lost(self, lost):
                member._revoked((tp.partition for tp in lost), lost=True)

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group, client_id=self.name,
                                 enable_auto_commit=True, auto_commit_interval_ms=1000,
                                 auto_offset_reset="earliest",
                                 session_timeout_ms=self.session_timeout_ms, heartbeat_interval_ms=1000,
                                 max_poll_interval_ms=30_000, **self.extra)
        consumer.subscribe([self.topic], listener=Listener())
        self.subscribed_at = time.monotonic()
        try:
            while not self.stop_event.is_set():
                try:
                    batches = consumer.poll(timeout_ms=100, max_records=500)
                except KafkaPythonError as exc:  # e.g. an error answer to JoinGroup: the next poll rejoins
                    self.client_errors.append(repr(exc))
                    time.sleep(0.1)
                    continue
                received = [r.value for records in batches.values() for r in records]
                self._record(received)
                if received:
                    self._commit(consumer)
            self._commit(consumer)
        finally:
            consumer.close()  # commits (auto-commit), then LeaveGroup

    def _commit(self, consumer) -> None:
        if not consumer.assignment():
            return
        try:
            consumer.commit()
            self.commits += 1
        except Exception as exc:  # noqa: BLE001 - CommitFailedError and friends, reported
            self.commit_failures.append(repr(exc))


class AIOKafkaMember(Member):
    """aiokafka in its own event loop, in this thread."""
    kind = "aiokafka"

    def consume_loop(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
        from aiokafka.errors import KafkaError as AIOKafkaError

        member = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked):
                await member._commit(consumer)
                member._revoked(tp.partition for tp in revoked)

            async def on_partitions_assigned(self, assigned):
                member._assigned(tp.partition for tp in assigned)

        for attempt in range(5):
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                                        client_id=self.name, enable_auto_commit=False,
                                        auto_offset_reset="earliest", session_timeout_ms=self.session_timeout_ms,
                                        heartbeat_interval_ms=1000, max_poll_interval_ms=30_000, **self.extra)
            consumer.subscribe([self.topic], listener=Listener())
            self.subscribed_at = self.subscribed_at or time.monotonic()
            try:
                await consumer.start()  # joins the group
                break
            except AIOKafkaError as exc:  # an error answer to JoinGroup ends start(): try a new consumer
                self.client_errors.append(f"start: {exc!r}")
                await consumer.stop()
                if attempt == 4:
                    raise
                await asyncio.sleep(2)
        try:
            while not self.go.is_set() and not self.stop_event.is_set():
                await asyncio.sleep(0.05)  # it stays in the group meanwhile (background heartbeats)
            while not self.stop_event.is_set():
                try:
                    batches = await consumer.getmany(timeout_ms=100, max_records=500)
                except AIOKafkaError as exc:
                    self.client_errors.append(repr(exc))
                    await asyncio.sleep(0.1)
                    continue
                received = [r.value for records in batches.values() for r in records]
                self._record(received)
                if received:
                    await self._commit(consumer)
            await self._commit(consumer)
        finally:
            await consumer.stop()  # LeaveGroup

    async def _commit(self, consumer) -> None:
        if not consumer.assignment():
            return
        try:
            await consumer.commit()
            self.commits += 1
        except Exception as exc:  # noqa: BLE001 - CommitFailedError and friends, reported
            self.commit_failures.append(repr(exc))


def cover(members: list[Member], partitions: int) -> bool:
    """The members own disjoint, non-empty sets covering all the partitions."""
    owned = [m.owned_now() for m in members]
    union = frozenset().union(*owned)
    return all(owned) and union == frozenset(range(partitions)) and sum(map(len, owned)) == partitions


def describe(bootstrap: str, group: str):
    """The group as kop's DescribeGroups tells it (confluent's AdminClient decodes the assignments)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group])[group].result(30)


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import ConsumerGroupTopicPartitions
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    result = admin.list_consumer_group_offsets([request])[group].result(30)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})  # never joins
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1] for p in range(partitions)}
    finally:
        consumer.close()


def missing_report(bootstrap: str, group: str, topic: str, partitions: int, tally: Tally, wanted: list[bytes],
                   members: list[Member], log: str) -> str:
    """Why ``wanted`` is not all in ``tally``: where the missing values sit (partition, offset), the
    group's committed offsets, the high watermarks, the members and kop's warnings, for a failure
    message (a flake that does not reproduce must at least leave its traces)."""
    counts = tally.snapshot()
    missing = {v for v in wanted if not counts[v]}
    where: dict[int, list[int]] = defaultdict(list)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "missing-report", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])  # 0: before any packed offset
        deadline = time.monotonic() + 15
        seen = 0
        while time.monotonic() < deadline and seen < len(wanted):
            for m in consumer.consume(500, 0.5):
                if m.error() is None and m.value() in missing:
                    where[m.partition()].append(m.offset())
                seen += m.error() is None
    finally:
        consumer.close()
    lines = [f"{len(missing)} of {len(wanted)} not received; missing by partition: "
             + ", ".join(f"p{p}: {len(offs)} from offset {min(offs)}" for p, offs in sorted(where.items()))]
    try:
        lines.append(f"committed: {committed(bootstrap, group, topic, partitions)}")
        lines.append(f"high watermarks: {high_watermarks(bootstrap, topic, partitions)}")
    except Exception as exc:  # noqa: BLE001 - the report must not hide the failure it explains
        lines.append(f"offsets unavailable: {exc!r}")
    for m in members:
        lines.append(f"{m!r}: received {m.received}, commits {m.commits}, errors {m.errors[-1:]}, "
                     f"client errors {m.client_errors[-5:]}, commit failures {m.commit_failures[-5:]}")
    warnings = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
    lines.append("kop warnings (last 20):\n" + "\n".join(warnings[-20:]))
    return "\n".join(lines)
