"""Kafka Streams 4.1.2 through kop, unchanged: tests/clients/apps/java/KopWordCount.java (a word count with a
repartition and a state store, plus a stream-table join), at-least-once, against the real Pulsar.

The application creates its repartition and changelog topics itself (CreateTopics with Streams'
configs), joins with Streams' assignor, commits, purges its repartition topics with DeleteRecords.
The run: categories first (the table), then lines in phases; between phases the application is
stopped (SIGTERM: a clean close, committing) and its local state deleted, so the next start
resumes from its committed offsets and rebuilds its stores from their changelogs. After each phase
the counts it wrote must equal the expected counts exactly, and the join must have produced one
record per categorised word. Kafka's kafka-topics and kafka-configs then show the configs Streams
set on its internal topics.

Quick variant (make test): the pulsar entry format, 2 phases (one restart). Full (APPS_FULL=1,
make test-apps): both formats, 3 phases (two restarts), ten times the records.
"""

from __future__ import annotations

import random
import shutil
import struct
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from apps import FULL, JavaApp, read_all, record, tool_output
from support import admin, unique

pytestmark = pytest.mark.pulsar

FORMATS = ["pulsar", "kafka"] if FULL else ["pulsar"]
PHASES = 3 if FULL else 2
LINES_PER_PHASE = 5000 if FULL else 500
PARTITIONS = 2
VOCABULARY = [f"w{i:03d}" for i in range(300)]
CATEGORIES = {word: f"c{i % 7}" for i, word in enumerate(VOCABULARY) if i % 3 == 0}
MAIN = "KopWordCount"


def _lines(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(VOCABULARY) for _ in range(rnd.randint(3, 9))) for _ in range(count)]


def _produce(bootstrap: str, topic: str, items: list[tuple[str | None, str]]) -> None:
    # murmur2, as the Java producer: a table must be partitioned as Streams partitions the stream it joins
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True,
                         "partitioner": "murmur2_random"})
    for key, value in items:
        producer.produce(topic, value.encode(), key=key.encode() if key is not None else None)
        producer.poll(0)
    assert producer.flush(60) == 0


def _latest_counts(records) -> dict[str, int]:
    latest: dict[str, int] = {}
    for key, value in records:
        latest[key.decode()] = value
    return latest


def _committed_to_end(bootstrap: str, group: str, topic: str) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = consumer.committed(parts, timeout=30)
        ends = [consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in parts]
        return all(c.offset >= 0 and c.offset >= end for c, end in zip(committed, ends))
    finally:
        consumer.close()


@pytest.mark.parametrize("entry_format", FORMATS)
def test_word_count_and_join_survive_restarts(gateways, kafka_apps, kafka_tools, entry_format):
    gw = gateways("--entry-format", entry_format)
    app_id = unique("kop-streams")
    lines_topic, categories_topic, counts_topic, joined_topic = (unique(n) for n in ("lines", "categories", "counts",
                                                                                      "joined"))
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    created = client.create_topics([NewTopic(t, PARTITIONS, 1) for t in
                                    (lines_topic, categories_topic, counts_topic, joined_topic)])
    for future in created.values():
        future.result(30)
    state_dir = Path(tempfile.mkdtemp(prefix="kop-streams-"))
    app = JavaApp(f"streams-{entry_format}", MAIN, gw.bootstrap, app_id, lines_topic, categories_topic, counts_topic,
                  joined_topic, str(state_dir))
    measured = {"entry_format": entry_format, "phases": PHASES, "restarts": PHASES - 1, "lines": 0, "words": 0,
                "distinct_words": 0, "joined_records": 0, "seconds_per_phase": []}
    expected: Counter[str] = Counter()
    try:
        _produce(gw.bootstrap, categories_topic, list(CATEGORIES.items()))
        for phase in range(PHASES):
            started = time.monotonic()
            mark = len(app.log())
            app.start()
            app.wait_for("STATE RUNNING", 240, after=mark)
            if phase == 0:  # the table first, so that every categorised word of the lines joins
                deadline = time.monotonic() + 120
                while not _committed_to_end(gw.bootstrap, app_id, categories_topic):
                    assert time.monotonic() < deadline, "Streams did not consume the categories"
                    time.sleep(1)
            lines = _lines(phase, LINES_PER_PHASE)
            _produce(gw.bootstrap, lines_topic, [(None, line) for line in lines])
            for line in lines:
                expected.update(line.split())
            counts = read_all(gw.bootstrap, counts_topic, PARTITIONS, lambda rs: _latest_counts(rs) == expected,
                              timeout=300, deserialize=lambda v: struct.unpack(">q", v)[0])
            assert _latest_counts(counts) == expected, f"phase {phase}: counts differ\n{app.log()[-3000:]}"
            measured["seconds_per_phase"].append(round(time.monotonic() - started, 1))
            measured["lines"] += len(lines)
            assert app.stop() in (0, 143), app.log()[-3000:]
            shutil.rmtree(state_dir, ignore_errors=True)  # the next start restores from the changelogs
            state_dir.mkdir()

        want_joined = Counter({f"{CATEGORIES[w]}:{w}": n for w, n in expected.items() if w in CATEGORIES})
        joined = read_all(gw.bootstrap, joined_topic, PARTITIONS,
                          lambda rs: Counter(v.decode() for _, v in rs) == want_joined, timeout=120)
        assert Counter(v.decode() for _, v in joined) == want_joined
        measured.update(words=sum(expected.values()), distinct_words=len(expected), joined_records=len(joined),
                        counts_records=len(counts))

        # Kafka's own tools show the configs Streams set on its internal topics
        internal = sorted(t for t in client.list_topics(timeout=30).topics if t.startswith(app_id))
        repartition = [t for t in internal if t.endswith("-repartition")]
        changelog = [t for t in internal if t.endswith("-changelog")]
        assert repartition and changelog, internal
        described = tool_output(kafka_tools, "kafka.admin.ConfigCommand", "--bootstrap-server", gw.bootstrap,
                                "--entity-type", "topics", "--entity-name", repartition[0], "--describe")
        for setting in ("message.timestamp.type=CreateTime", "cleanup.policy=delete", "segment.bytes=52428800",
                        "retention.ms=-1"):
            assert setting in described, described
        described = tool_output(kafka_tools, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", gw.bootstrap,
                                "--describe", "--topic", changelog[0])
        assert "cleanup.policy=compact" in described and "message.timestamp.type=CreateTime" in described, described
        # Streams purged its repartition topics with DeleteRecords: their log start moved
        starts = {t: admin(f"persistent/public/default/{t}/properties")[1] for t in repartition}
        assert all(any(k.startswith("kafka.log_start.") for k in props) for props in starts.values()), starts
        measured["internal_topics"] = internal
        record(f"streams-{entry_format}", measured)
    finally:
        app.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def test_exactly_once_v2_counts_stay_exact_across_a_crash(gateways, kafka_apps, entry_format="pulsar"):
    """processing.guarantee=exactly_once_v2 (Kafka transactions, issue 18): the application is killed
    with SIGKILL while it processes a phase, restarted, and the counts it committed are still exact:
    the output of the transactions it had not committed is aborted, and its offsets and store
    changelog rewind with them. (At least once, the records processed since the last commit would be
    counted twice.)"""
    gw = gateways("--entry-format", entry_format)
    app_id = unique("kop-eos")
    lines_topic, categories_topic, counts_topic, joined_topic = (unique(n) for n in ("lines", "categories", "counts",
                                                                                      "joined"))
    client = AdminClient({"bootstrap.servers": gw.bootstrap})
    for future in client.create_topics([NewTopic(t, PARTITIONS, 1) for t in
                                        (lines_topic, categories_topic, counts_topic, joined_topic)]).values():
        future.result(30)
    state_dir = Path(tempfile.mkdtemp(prefix="kop-eos-"))
    app = JavaApp("streams-eos", MAIN, gw.bootstrap, app_id, lines_topic, categories_topic, counts_topic,
                  joined_topic, str(state_dir), "exactly_once_v2")
    expected: Counter[str] = Counter()
    measured = {"entry_format": entry_format, "lines": 0, "kills": 0}
    decode = lambda v: struct.unpack(">q", v)[0]  # noqa: E731
    try:
        _produce(gw.bootstrap, categories_topic, list(CATEGORIES.items()))
        for phase in range(2):
            mark = len(app.log())
            app.start()
            app.wait_for("STATE RUNNING", 240, after=mark)
            lines = _lines(100 + phase, LINES_PER_PHASE)
            _produce(gw.bootstrap, lines_topic, [(None, line) for line in lines])
            for line in lines:
                expected.update(line.split())
            if phase == 1:  # crash while processing: some of the phase's transactions never commit
                seen = read_all(gw.bootstrap, counts_topic, PARTITIONS, lambda rs: len(rs) > before, timeout=120)
                assert len(seen) > before, "the phase's first counts were committed before the crash"
                measured["committed_before_kill"] = len(seen) - before
                app.kill()
                measured["kills"] += 1
                mark = len(app.log())
                app.start()
                app.wait_for("STATE RUNNING", 240, after=mark)
            counts = read_all(gw.bootstrap, counts_topic, PARTITIONS, lambda rs: _latest_counts(rs) == expected,
                              timeout=300, deserialize=decode)
            assert _latest_counts(counts) == expected, f"phase {phase}: counts differ\n{app.log()[-3000:]}"
            measured["lines"] += len(lines)
            before = len(counts)
            assert app.stop() in (0, 143), app.log()[-3000:]
        # read_committed never saw a count above the truth: every record of counts_topic is a prefix count
        everything = read_all(gw.bootstrap, counts_topic, PARTITIONS, lambda rs: False, timeout=5, deserialize=decode)
        assert all(value <= expected[key.decode()] for key, value in everything)
        record(f"streams-eos-{entry_format}", measured)
    finally:
        app.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
