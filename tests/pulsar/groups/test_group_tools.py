"""Operating kop's consumer groups with the tools operators use:

(a) Apache Kafka's own ``kafka-consumer-groups`` (ConsumerGroupCommand, Kafka 4.1.2's Java tools run by
    scripts/kafka-tools.sh): ``--list``, ``--describe`` (offsets, ``--members``, ``--state``),
    ``--reset-offsets`` (``--to-earliest``, ``--to-latest``, ``--to-offset``, ``--shift-by``),
    ``--delete-offsets`` and ``--delete``.
(b) Pulsar's admin API: each group is a durable subscription ``kafka-group-<group>`` on every partition
    it committed (kop/groups/cursor_sync.py), whose ``msgBacklog`` is the group's lag in records when
    every entry holds one record, and which DeleteGroups/OffsetDelete remove.

Offsets are packed Pulsar positions (kop/mapping/offsets.py): the tool's LAG (log end offset minus
committed offset) is not a count of records; it is 0 exactly when nothing is left. All records here
are produced one per Pulsar entry (kafka-python, linger 0, waiting for each acknowledgement), so the
next record's offset is never ``offset + 1`` and the log end offset is the last record's offset + 1.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from urllib.parse import quote

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata, TopicPartition

from support import CONTIGUOUS, OFFSETS_MODE, ROOT, admin, unique

pytestmark = pytest.mark.pulsar

TOOLS = ROOT / "scripts" / "kafka-tools.sh"
CGC = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
FAST_GROUPS = {"KOP_GROUPS_INITIAL_REBALANCE_DELAY_MS": "300"}
BATCH_MASK = (1 << 14) - 1  # the batch-index bits of a packed offset
BACKLOG_WAIT_S = 3.0
PREFIX = "kafka-group-"




# -- helpers --------------------------------------------------------------------------------------

def cgc(gw, *args: str, timeout: float = 120) -> str:
    """Run kafka-consumer-groups against ``gw``; its stdout (it exits 0 on errors too, as Kafka's does)."""
    proc = subprocess.run([str(TOOLS), "run", CGC, "--bootstrap-server", gw.bootstrap, *args],
                          capture_output=True, timeout=timeout)
    out, err = proc.stdout.decode(), proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"kafka-consumer-groups {' '.join(args)}: exit {proc.returncode}\n{out}\n{err}"
    assert "Exception" not in err, f"kafka-consumer-groups {' '.join(args)}:\n{out}\n{err}"
    return out + err


def table(output: str) -> list[dict[str, str]]:
    """The rows of the tool's table (the first line starting with GROUP or TOPIC is the header)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("GROUP ", "TOPIC ")):
            header = line.replace("COORDINATOR (ID)", "COORDINATOR(ID)").split()
            rows = []
            for row in lines[i + 1:]:
                values = re.sub(r"(\S+:\d+)\s+\((\d+)\)", r"\1(\2)", row).split()
                if len(values) == len(header):
                    rows.append(dict(zip(header, values)))
            return rows
    raise AssertionError(f"no table in:\n{output}")


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    client = KafkaAdminClient(bootstrap_servers=bootstrap)
    client.create_topics([NewTopic(topic, partitions, 1)])
    client.close()


def produce_one_per_entry(bootstrap: str, topic: str, partitions: int, per_partition: int,
                          tag: str = "v", contiguous: bool = CONTIGUOUS) -> dict[int, list[int]]:
    """``per_partition`` records on each partition, one per Pulsar entry; their offsets per partition."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    offsets: dict[int, list[int]] = {p: [] for p in range(partitions)}
    for i in range(per_partition):
        for p in range(partitions):
            md = producer.send(topic, key=b"k", value=f"{tag}-{p}-{i}".encode(), partition=p).get(30)
            offsets[p].append(md.offset)
    producer.close()
    for p, offs in offsets.items():
        if contiguous:
            assert offs == list(range(offs[0], offs[0] + len(offs))), f"partition {p}: not contiguous: {offs}"
        else:
            assert all(o & BATCH_MASK == 0 for o in offs), f"partition {p}: a record shares an entry: {offs}"
        assert offs == sorted(offs) and len(set(offs)) == len(offs)
    return offsets


def consumer(bootstrap: str, group: str, topic: str, **extra) -> KafkaConsumer:
    conf = dict(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                auto_offset_reset="earliest", session_timeout_ms=10_000, heartbeat_interval_ms=1000)
    conf.update(extra)
    return KafkaConsumer(topic, **conf)


def consume(c: KafkaConsumer, want: int, timeout: float = 60, max_records: int | None = None) -> list:
    records: list = []
    deadline = time.monotonic() + timeout
    while len(records) < want and time.monotonic() < deadline:
        batch = c.poll(timeout_ms=500, max_records=max_records or (want - len(records)))
        for recs in batch.values():
            records.extend(recs)
    return records


def read_group(bootstrap: str, group: str, topic: str, want: int, settle_s: float = 1.5,
               timeout: float = 60) -> list[tuple[int, bytes]]:
    """What a new member of ``group`` reads from its committed offsets: ``want`` records (or what came
    within ``timeout``), then nothing more for ``settle_s``. Does not commit."""
    c = consumer(bootstrap, group, topic)
    try:
        records = consume(c, want, timeout)
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                records.extend(recs)
    finally:
        c.close(autocommit=False)
    return sorted((r.partition, r.value) for r in records)


def committed(bootstrap: str, group: str) -> dict[int, int]:
    """OffsetFetch through kafka-python's admin client: {partition: committed offset}."""
    client = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {tp.partition: om.offset for tp, om in client.list_group_offsets(group)[group].items()}
    finally:
        client.close()


def subscription(topic: str, partition: int, group: str) -> dict | None:
    """The group's subscription in the partition's topic stats, or None."""
    status, stats = admin(f"persistent/public/default/{topic}-partition-{partition}/stats")
    assert status == 200, (status, stats)
    return stats["subscriptions"].get(PREFIX + group)


def subscription_status(topic: str, partition: int, group: str) -> int:
    """HTTP status of the subscription's properties: 200, or 404 when it does not exist."""
    return admin(f"persistent/public/default/{topic}-partition-{partition}/subscription/"
                 f"{quote(PREFIX + group, safe='')}/properties")[0]


def backlogs(topic: str, partitions, group: str) -> dict[int, int | None]:
    out = {}
    for p in partitions:
        sub = subscription(topic, p, group)
        out[p] = None if sub is None else sub["msgBacklog"]
    return out


def wait_backlogs(topic: str, group: str, want: dict[int, int | None], since: float,
                  timeout: float = BACKLOG_WAIT_S) -> float:
    """Seconds from ``since`` until the subscriptions' msgBacklog equal ``want`` (None: no subscription)."""
    deadline = since + timeout
    while True:
        got = backlogs(topic, want, group)
        now = time.monotonic()
        if got == want:
            return now - since
        if now > deadline:
            raise AssertionError(f"after {now - since:.2f} s the backlog of {PREFIX}{group} is {got}, want {want}")
        time.sleep(0.02)


def commit(c: KafkaConsumer, topic: str, offsets: dict[int, int]) -> float:
    c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
    return time.monotonic()


# -- (a) kafka-consumer-groups ---------------------------------------------------------------------

def test_list_and_describe_active_group(kafka_tools, gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group, client_id = unique("cgt"), unique("g"), "cgt-client"
    create_topic(gw.bootstrap, topic, 2)
    offsets = produce_one_per_entry(gw.bootstrap, topic, 2, 10)
    leo = {p: offs[-1] + 1 for p, offs in offsets.items()}
    c = consumer(gw.bootstrap, group, topic, client_id=client_id)
    try:
        assert len(consume(c, 20)) == 20
        # Partition 0 entirely consumed and committed; partition 1 committed up to its 5th record.
        commits = {0: leo[0], 1: offsets[1][4]}
        commit(c, topic, commits)
        client = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
        member_id = client.describe_groups([group])[group]["members"][0]["member_id"]
        client.close()

        assert group in cgc(gw, "--list").split()

        rows = {int(r["PARTITION"]): r for r in table(cgc(gw, "--describe", "--group", group))}
        assert set(rows) == {0, 1}, rows
        for p, row in rows.items():
            assert row["GROUP"] == group and row["TOPIC"] == topic
            assert int(row["CURRENT-OFFSET"]) == commits[p], row
            assert int(row["LOG-END-OFFSET"]) == leo[p], row
            assert int(row["LAG"]) == leo[p] - commits[p], row
            assert (row["CONSUMER-ID"], row["HOST"], row["CLIENT-ID"]) == (member_id, "/127.0.0.1", client_id), row
        assert int(rows[0]["LAG"]) == 0
        assert int(rows[1]["LAG"]) > 0
        if CONTIGUOUS:
            assert int(rows[1]["LAG"]) == 6, "LAG is the number of records left"
        print(f"LAG of partition 1 with 6 records left: {rows[1]['LAG']} ({OFFSETS_MODE} offsets)")

        members = table(cgc(gw, "--describe", "--group", group, "--members", "--verbose"))
        assert len(members) == 1, members
        m = members[0]
        assert (m["CONSUMER-ID"], m["HOST"], m["CLIENT-ID"], m["#PARTITIONS"]) == \
            (member_id, "/127.0.0.1", client_id, "2"), m
        assert m["CURRENT-ASSIGNMENT"] == f"{topic}:0,1", m

        state = table(cgc(gw, "--describe", "--group", group, "--state"))
        assert len(state) == 1, state
        s = state[0]
        assert (s["STATE"], s["#MEMBERS"], s["ASSIGNMENT-STRATEGY"]) == ("Stable", "1", "range"), s
        assert re.fullmatch(rf"127\.0\.0\.1:{gw.port}\(\d+\)", s["COORDINATOR(ID)"]), s

        # Everything consumed and committed: no lag anywhere.
        commit(c, topic, leo)
        rows = table(cgc(gw, "--describe", "--group", group))
        assert {int(r["PARTITION"]): (int(r["CURRENT-OFFSET"]), int(r["LAG"])) for r in rows} == \
            {p: (leo[p], 0) for p in leo}, rows
    finally:
        c.close(autocommit=False)

    out = cgc(gw, "--describe", "--group", group, "--state")
    assert (table(out)[0]["STATE"], table(out)[0]["#MEMBERS"]) == ("Empty", "0"), out
    out = cgc(gw, "--describe", "--group", group)
    assert "has no active members" in out
    assert {int(r["PARTITION"]): (int(r["CURRENT-OFFSET"]), r["CONSUMER-ID"]) for r in table(out)} == \
        {p: (leo[p], "-") for p in leo}
    assert "does not exist" in cgc(gw, "--describe", "--group", unique("g-none"))


def test_lag_counts_records_in_one_entry_and_across_many(kafka_tools, gateways):
    """Contiguous offsets: LAG is the number of records left, whether they share one Pulsar entry (one
    Kafka batch) or each have their own."""
    gw = gateways(env={**FAST_GROUPS, "KOP_OFFSETS_MODE": "contiguous"})
    topic, group = unique("cgt-lag"), unique("g")
    create_topic(gw.bootstrap, topic, 2)
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap, acks="all", linger_ms=200, batch_size=1 << 20)
    batched = [producer.send(topic, value=b"b%d" % i, partition=0) for i in range(10)]
    producer.flush(30)
    assert [f.get(10).offset for f in batched] == list(range(10))
    producer.close()
    spread = produce_one_per_entry(gw.bootstrap, topic, 2, 10, contiguous=True)[1]
    assert spread == list(range(10))
    c = consumer(gw.bootstrap, group, topic)
    try:
        assert len(consume(c, 30)) == 30
        commit(c, topic, {0: 3, 1: 8})  # 7 left inside the one entry, 2 left of the ten entries
        rows = {int(r["PARTITION"]): r for r in table(cgc(gw, "--describe", "--group", group))}
        assert {p: (int(r["CURRENT-OFFSET"]), int(r["LOG-END-OFFSET"]), int(r["LAG"])) for p, r in rows.items()} == \
            {0: (3, 20, 17), 1: (8, 10, 2)}, rows
    finally:
        c.close(autocommit=False)


def test_reset_offsets(kafka_tools, gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("cgt"), unique("g")
    create_topic(gw.bootstrap, topic, 2)
    offsets = produce_one_per_entry(gw.bootstrap, topic, 2, 10)
    earliest = {p: offs[0] for p, offs in offsets.items()}
    leo = {p: offs[-1] + 1 for p, offs in offsets.items()}
    values = {p: [f"v-{p}-{i}".encode() for i in range(10)] for p in offsets}
    reset = ("--reset-offsets", "--group", group)

    c = consumer(gw.bootstrap, group, topic)
    try:
        assert len(consume(c, 20)) == 20
        commit(c, topic, leo)
        # Refused while the group has a member.
        out = cgc(gw, *reset, "--topic", topic, "--to-earliest", "--execute")
        assert "can only be reset if the group" in out and "inactive" in out, out
        assert committed(gw.bootstrap, group) == leo
    finally:
        c.close(autocommit=False)

    # --to-earliest: a dry run changes nothing; --execute commits the earliest offsets.
    rows = table(cgc(gw, *reset, "--topic", topic, "--to-earliest", "--dry-run"))
    assert {int(r["PARTITION"]): int(r["NEW-OFFSET"]) for r in rows} == earliest, rows
    assert committed(gw.bootstrap, group) == leo
    rows = table(cgc(gw, *reset, "--topic", topic, "--to-earliest", "--execute"))
    since = time.monotonic()  # the tool committed before it exited
    assert {int(r["PARTITION"]): int(r["NEW-OFFSET"]) for r in rows} == earliest, rows
    assert committed(gw.bootstrap, group) == earliest
    delay = wait_backlogs(topic, group, {0: 10, 1: 10}, since)
    print(f"reset --to-earliest -> Pulsar backlog 10/10 {delay:.2f} s after the tool exited")
    assert read_group(gw.bootstrap, group, topic, 20) == sorted((p, v) for p in values for v in values[p])

    # --to-latest: the log end offsets; nothing left to read, no lag, no backlog.
    table(cgc(gw, *reset, "--all-topics", "--to-latest", "--execute"))
    assert committed(gw.bootstrap, group) == leo
    rows = table(cgc(gw, "--describe", "--group", group))
    assert {int(r["PARTITION"]): int(r["LAG"]) for r in rows} == {0: 0, 1: 0}, rows
    wait_backlogs(topic, group, {0: 0, 1: 0}, time.monotonic())
    assert read_group(gw.bootstrap, group, topic, 0) == []

    # --to-offset on one partition: that record's offset; a member reads from that record on.
    target = offsets[1][4]
    rows = table(cgc(gw, *reset, "--topic", f"{topic}:1", "--to-offset", str(target), "--execute"))
    assert [(int(r["PARTITION"]), int(r["NEW-OFFSET"])) for r in rows] == [(1, target)], rows
    assert committed(gw.bootstrap, group) == {0: leo[0], 1: target}
    wait_backlogs(topic, group, {0: 0, 1: 6}, time.monotonic())
    assert read_group(gw.bootstrap, group, topic, 6) == [(1, v) for v in values[1][4:]]

    # --shift-by -1 from a log end offset ("last consumed + 1") is the last record: it is read again.
    rows = table(cgc(gw, *reset, "--topic", f"{topic}:0", "--shift-by", "-1", "--execute"))
    assert [(int(r["PARTITION"]), int(r["NEW-OFFSET"])) for r in rows] == [(0, offsets[0][-1])], rows
    wait_backlogs(topic, group, {0: 1, 1: 6}, time.monotonic())
    assert read_group(gw.bootstrap, group, topic, 7) == \
        sorted([(0, values[0][-1])] + [(1, v) for v in values[1][4:]])

    # --to-earliest/--to-latest offsets are what ListOffsets answers; --describe agrees.
    rows = {int(r["PARTITION"]): r for r in table(cgc(gw, "--describe", "--group", group))}
    assert {p: int(r["LOG-END-OFFSET"]) for p, r in rows.items()} == leo


@pytest.mark.xfail(not CONTIGUOUS, strict=True, reason="design divergence of offsets.mode packed (kop/mapping/offsets.py): offsets are "
                   "not contiguous, so --shift-by N moves by N offsets, not N records; from a record's own offset "
                   "-1 lands past the previous entry (its record is skipped), from the log end -3 re-reads 1 record")
def test_shift_by_counts_records(kafka_tools, gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("cgt"), unique("g")
    create_topic(gw.bootstrap, topic, 1)
    offsets = produce_one_per_entry(gw.bootstrap, topic, 1, 5)[0]
    values = [f"v-0-{i}".encode() for i in range(5)]
    reset = ("--reset-offsets", "--group", group, "--topic", topic, "--execute")
    cgc(gw, *reset, "--to-latest")
    cgc(gw, *reset, "--shift-by", "-3")
    shifted_from_end = read_group(gw.bootstrap, group, topic, 3, settle_s=0.5, timeout=4)
    cgc(gw, *reset, "--to-offset", str(offsets[3]))
    cgc(gw, *reset, "--shift-by", "-1")
    shifted_from_record = read_group(gw.bootstrap, group, topic, 3, settle_s=0.5, timeout=4)
    # Kafka: both re-read v-0-2, v-0-3 and v-0-4.
    assert (shifted_from_end, shifted_from_record) == ([(0, v) for v in values[2:]], [(0, v) for v in values[2:]]), \
        f"shift -3 from the end read {shifted_from_end}; shift -1 from record 3 read {shifted_from_record}"


def test_delete_offsets_and_delete_group_with_the_tool(kafka_tools, gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("cgt"), unique("g")
    create_topic(gw.bootstrap, topic, 2)
    offsets = produce_one_per_entry(gw.bootstrap, topic, 2, 3)
    c = consumer(gw.bootstrap, group, topic)
    try:
        assert len(consume(c, 6)) == 6
        commit(c, topic, {p: offs[-1] + 1 for p, offs in offsets.items()})
        wait_backlogs(topic, group, {0: 0, 1: 0}, time.monotonic())
        # Refused while a member is subscribed: the group, its offsets and subscriptions stay.
        out = cgc(gw, "--delete", "--group", group)
        assert "GroupNotEmptyException" in out, out
        out = cgc(gw, "--delete-offsets", "--group", group, "--topic", f"{topic}:0")
        assert "GroupSubscribedToTopicException" in out, out
        assert set(committed(gw.bootstrap, group)) == {0, 1}
        assert backlogs(topic, [0, 1], group) == {0: 0, 1: 0}
    finally:
        c.close(autocommit=False)

    out = cgc(gw, "--delete-offsets", "--group", group, "--topic", f"{topic}:0")
    assert [(r["PARTITION"], r["STATUS"]) for r in table(out)] == [("0", "Successful")], out
    assert set(committed(gw.bootstrap, group)) == {1}
    assert subscription(topic, 0, group) is None and subscription_status(topic, 0, group) == 404
    assert subscription(topic, 1, group) is not None

    out = cgc(gw, "--delete", "--group", group)
    assert f"Deletion of requested consumer groups ('{group}') was successful" in out, out
    assert group not in cgc(gw, "--list").split()
    assert committed(gw.bootstrap, group) == {}
    assert backlogs(topic, [0, 1], group) == {0: None, 1: None}
    assert subscription_status(topic, 1, group) == 404
    assert "GroupIdNotFoundException" in cgc(gw, "--delete", "--group", group)


# -- (b) the group's Pulsar subscription ----------------------------------------------------------------

def test_subscription_backlog_follows_commits(gateways):
    gw = gateways(env=FAST_GROUPS)
    topic, group = unique("cgt"), unique("g")
    create_topic(gw.bootstrap, topic, 2)
    per_partition = 10
    offsets = produce_one_per_entry(gw.bootstrap, topic, 2, per_partition)
    c = consumer(gw.bootstrap, group, topic)
    consumed = {0: 0, 1: 0}
    delays: list[float] = []
    try:
        while sum(consumed.values()) < 2 * per_partition:
            left = 2 * per_partition - sum(consumed.values())
            records = consume(c, min(3, left), max_records=3)  # consume k records, then commit them
            assert records, "no records"
            for r in records:
                assert r.offset == offsets[r.partition][consumed[r.partition]], "in order, none skipped"
                consumed[r.partition] += 1
            positions = {p: offsets[p][n - 1] + 1 for p, n in consumed.items() if n}
            since = commit(c, topic, positions)
            delays.append(wait_backlogs(topic, group, {p: per_partition - consumed[p] for p in positions}, since))
        assert backlogs(topic, [0, 1], group) == {0: 0, 1: 0}
        # Moving back: the backlog grows again.
        since = commit(c, topic, {0: offsets[0][2], 1: offsets[1][7]})
        delays.append(wait_backlogs(topic, group, {0: 8, 1: 3}, since))
        # The same numbers in Pulsar's precise backlog, and what else the stats say about it.
        for p, want in ((0, 8), (1, 3)):
            status, stats = admin(f"persistent/public/default/{topic}-partition-{p}/stats?getPreciseBacklog=true")
            sub = stats["subscriptions"][PREFIX + group]
            assert sub["msgBacklog"] == want, sub
            assert sub["subscriptionProperties"] == {"kop.kafka.group": group}, sub
            assert sub["consumers"] == [] and sub["isDurable"], sub
    finally:
        c.close(autocommit=False)
    print(f"commit -> cursor delay over {len(delays)} commits: min {min(delays):.3f} s, "
          f"median {statistics.median(delays):.3f} s, max {max(delays):.3f} s")
    assert max(delays) <= BACKLOG_WAIT_S


def test_delete_groups_and_offset_delete_remove_subscriptions(gateways):
    gw = gateways(env=FAST_GROUPS)
    topic = unique("cgt")
    create_topic(gw.bootstrap, topic, 2)
    offsets = produce_one_per_entry(gw.bootstrap, topic, 2, 3)
    client = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    try:
        # A group with commits on both partitions (simple commits: AlterConsumerGroupOffsets).
        group = unique("g")
        result = client.alter_group_offsets(group, {TopicPartition(topic, p): OffsetAndMetadata(offs[1], "", -1)
                                                    for p, offs in offsets.items()})
        assert all(e.errno == 0 for e in result.values()), result
        wait_backlogs(topic, group, {0: 2, 1: 2}, time.monotonic())

        # OffsetDelete of partition 0: its subscription goes at once, partition 1's stays.
        result = client.delete_group_offsets(group, [TopicPartition(topic, 0)])
        assert all(e.errno == 0 for e in result.values()), result
        assert subscription(topic, 0, group) is None and subscription_status(topic, 0, group) == 404
        assert backlogs(topic, [1], group) == {1: 2}
        assert set(committed(gw.bootstrap, group)) == {1}

        # DeleteGroups: the last subscription goes too.
        client.delete_groups([group])
        assert backlogs(topic, [0, 1], group) == {0: None, 1: None}
        assert subscription_status(topic, 1, group) == 404

        # Deleted right after committing, before the cursor sync ran: nothing is created afterwards.
        quick = unique("g")
        client.alter_group_offsets(quick, {TopicPartition(topic, p): OffsetAndMetadata(offs[2], "", -1)
                                           for p, offs in offsets.items()})
        client.delete_groups([quick])
        time.sleep(2.5)  # more than two cursor-sync intervals
        assert backlogs(topic, [0, 1], quick) == {0: None, 1: None}

        # Same for OffsetDelete right after the commit.
        quick2 = unique("g")
        client.alter_group_offsets(quick2, {TopicPartition(topic, 0): OffsetAndMetadata(offsets[0][2], "", -1)})
        client.delete_group_offsets(quick2, [TopicPartition(topic, 0)])
        time.sleep(2.5)
        assert backlogs(topic, [0], quick2) == {0: None}
        assert committed(gw.bootstrap, quick2) == {}
    finally:
        client.close()
