"""kop/groups/store.py against the real Pulsar: what load() returns is exactly the latest state of
every (group, topic, partition) commit and every group record, from a fresh store, before and after
Pulsar compacts the ``__offsets`` partitions (the keying survives compaction); tombstones delete;
partition_for is stable and spreads groups; failed writes raise."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import zlib

import pytest

from kop.backend.pulsar import PulsarBackend
from kop.config import load
from kop.groups.store import (CommittedOffset, NotOwner, GroupRecord, LoadedPartition, MemberRecord, OffsetsStore,
                              StoreError, partition_for)
from support import ADMIN_URL, OFFSETS_MODE, ROOT, SERVICE_URL, admin, drop_namespace, unique

pytestmark = pytest.mark.pulsar

PARTITIONS = 4
GROUPS = ["g-alpha", "g-beta", "g-gamma", "g-delta", "g-epsilon", "g-zeta", 'g/"odd",[chars]', "g-ünï-☃"]


async def _backend(namespace: str) -> PulsarBackend:
    backend = PulsarBackend(load(env={"KOP_PULSAR_SYSTEM_NAMESPACE": f"public/{namespace}", "KOP_OFFSETS_MODE": OFFSETS_MODE,
                                      "KOP_PULSAR_ADMIN_URL": ADMIN_URL, "KOP_PULSAR_SERVICE_URL": SERVICE_URL}))
    await backend.start()
    return backend


@pytest.fixture
async def backend(pulsar):
    backend = await _backend(unique("kop-store"))
    yield backend
    await backend.close()
    drop_namespace(backend.system_namespace.path)


async def _owning(store: OffsetsStore, start: bool = True) -> OffsetsStore:
    """Start the store and take every partition's exclusive producer, as a lone gateway does."""
    if start:
        await store.start()
    for partition in range(store.partitions):
        assert await store.acquire(partition), f"partition {partition} is held elsewhere"
    return store


def _commit(offset: int, metadata: str | None = None, epoch: int = -1) -> CommittedOffset:
    return CommittedOffset(offset, metadata, 1_700_000_000_000 + offset, epoch)


def _group(group_id: str, generation: int, members: int) -> GroupRecord:
    return GroupRecord(group_id, "consumer", generation, "range", f"{group_id}-m0" if members else None, tuple(
        MemberRecord(f"{group_id}-m{i}", None if i else f"static-{i}", f"client-{i}", f"/10.0.0.{i}", 60_000,
                     45_000, bytes([0, 1, i, 255]) * (i + 1), b"\x00assignment\xff" + bytes([i]))
        for i in range(members)), 1_700_000_000_000 + generation)


class Model:
    """What load() must return, per __offsets partition."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.offsets: dict[tuple[str, str, int], CommittedOffset] = {}
        self.groups: dict[str, GroupRecord] = {}

    def expected(self, partition: int) -> LoadedPartition:
        return LoadedPartition(
            {k: v for k, v in self.offsets.items() if partition_for(k[0], self.partitions) == partition},
            {k: v for k, v in self.groups.items() if partition_for(k, self.partitions) == partition})

    async def write_offsets(self, store: OffsetsStore, group: str, commits: dict) -> None:
        await store.write_offsets(group, commits)
        self.offsets.update({(group, t, p): c for (t, p), c in commits.items()})

    async def delete_offsets(self, store: OffsetsStore, group: str, keys: list) -> None:
        await store.delete_offsets(group, keys)
        for t, p in keys:
            self.offsets.pop((group, t, p), None)

    async def write_group(self, store: OffsetsStore, record: GroupRecord) -> None:
        await store.write_group(record)
        self.groups[record.group_id] = record

    async def delete_group(self, store: OffsetsStore, group: str) -> None:
        keys = [(t, p) for g, t, p in self.offsets if g == group]
        await store.delete_group(group, keys)
        self.groups.pop(group, None)
        for t, p in keys:
            self.offsets.pop((group, t, p))


async def _assert_loads(backend: PulsarBackend, model: Model) -> float:
    """Load every partition from a NEW store; each must equal the model exactly. Returns seconds."""
    store = OffsetsStore(backend, partitions=model.partitions)
    started = time.monotonic()
    try:
        for partition in range(model.partitions):
            loaded = await store.load(partition)
            expected = model.expected(partition)
            assert loaded.offsets == expected.offsets, f"offsets of __offsets-partition-{partition}"
            assert loaded.groups == expected.groups, f"groups of __offsets-partition-{partition}"
    finally:
        await store.close()
    return time.monotonic() - started


def _compact(namespace: str, partition: int, timeout: float = 120) -> None:
    path = f"persistent/{namespace}/__offsets-partition-{partition}/compaction"
    status, body = admin(path, method="PUT")
    assert status in (204, 409), (status, body)  # 409: already running
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = admin(path)
        assert status == 200, body
        if body["status"] == "SUCCESS":
            return
        assert body["status"] != "ERROR", body
        time.sleep(0.2)
    pytest.fail(f"compaction of {path} did not finish in {timeout} s: {body}")


def _compacted_entries(namespace: str, partition: int) -> int:
    status, stats = admin(f"persistent/{namespace}/__offsets-partition-{partition}/internalStats")
    assert status == 200, stats
    return max(int(stats["compactedLedger"]["entries"]), 0)  # -1: nothing was kept (no ledger)


async def test_load_gives_the_latest_state_before_and_after_compaction(backend):
    namespace = backend.system_namespace.path
    store = OffsetsStore(backend, partitions=PARTITIONS)
    await store.start()
    status, meta = admin(f"persistent/{namespace}/__offsets/partitions")
    assert status == 200 and meta["partitions"] == PARTITIONS
    assert admin(f"persistent/{namespace}/__offsets/compactionThreshold")[1] == 1024 * 1024
    await store.start()  # idempotent: the topic exists (409) and the policy is set again
    await _owning(store, start=False)
    used = {partition_for(g, PARTITIONS) for g in GROUPS}
    assert len(used) >= 3, used
    timings: dict[str, float] = {}
    model = Model(PARTITIONS)

    started = time.monotonic()
    # Commits for every group, two topics x three partitions, in one call each.
    for n, group in enumerate(GROUPS):
        await model.write_offsets(store, group, {(topic, p): _commit(100 * n + p, f"meta-{group}-{p}", p)
                                                 for topic in ("orders", "pay.ments") for p in range(3)})
    # Overwrites: one partition per call, then several groups at once (concurrently).
    for group in GROUPS[:4]:
        await model.write_offsets(store, group, {("orders", 1): _commit(5000, None)})
    await asyncio.gather(*(model.write_offsets(store, g, {("pay.ments", 2): _commit(7000 + i, "x" * i)})
                           for i, g in enumerate(GROUPS)))
    # Deletions of single offsets, and a delete followed by a re-commit (resurrection).
    await model.delete_offsets(store, GROUPS[1], [("orders", 0), ("pay.ments", 1)])
    await model.delete_offsets(store, GROUPS[2], [("orders", 2)])
    await model.write_offsets(store, GROUPS[2], {("orders", 2): _commit(42, "back")})
    await model.delete_offsets(store, GROUPS[3], [("never", 0)])  # a key that never existed
    # Group records: written, overwritten, one emptied of members, one group deleted entirely.
    for i, group in enumerate(GROUPS):
        await model.write_group(store, _group(group, 1, 1 + i % 3))
    await model.write_group(store, _group(GROUPS[0], 2, 3))
    await model.write_group(store, _group(GROUPS[4], 3, 0))
    await model.delete_group(store, GROUPS[5])
    # The very last message of some partitions is a tombstone.
    await model.delete_offsets(store, GROUPS[6], [("orders", 0)])
    await model.delete_offsets(store, GROUPS[7], [("orders", 0)])
    timings["writes"] = time.monotonic() - started
    await store.close()

    assert not any(g == GROUPS[5] for g, _, _ in model.offsets) and GROUPS[5] not in model.groups
    assert (GROUPS[2], "orders", 2) in model.offsets and model.offsets[(GROUPS[1], "orders", 1)].offset == 5000
    timings["load before compaction"] = await _assert_loads(backend, model)

    started = time.monotonic()
    for partition in range(PARTITIONS):
        _compact(namespace, partition)
    timings["compaction"] = time.monotonic() - started
    # Compaction kept exactly one message per live key (every commit, not one per group) and
    # dropped every deleted key and every tombstone.
    for partition in range(PARTITIONS):
        expected = model.expected(partition)
        assert _compacted_entries(namespace, partition) == len(expected.offsets) + len(expected.groups)
    timings["load after compaction"] = await _assert_loads(backend, model)

    # Writes after the compaction horizon (overwrite, delete, new key) on top of the compacted view.
    store = await _owning(OffsetsStore(backend, partitions=PARTITIONS), start=False)
    await model.write_offsets(store, GROUPS[0], {("orders", 0): _commit(9999, "after"), ("new", 7): _commit(1)})
    await model.delete_offsets(store, GROUPS[1], [("orders", 2)])
    await model.delete_group(store, GROUPS[2])
    await store.close()
    timings["load compacted + tail"] = await _assert_loads(backend, model)
    print("timings (s):", {k: round(v, 3) for k, v in timings.items()})


async def test_start_creates_eight_partitions_by_default_and_empty_partitions_load_empty(backend):
    store = OffsetsStore(backend)
    await store.start()
    assert store.partitions == 8
    status, meta = admin(f"persistent/{backend.system_namespace.path}/__offsets/partitions")
    assert status == 200 and meta["partitions"] == 8
    for partition in range(8):
        assert await store.load(partition) == LoadedPartition({}, {})
    with pytest.raises(ValueError):
        await store.load(8)
    await store.close()
    # A store configured with another count adopts the topic's: every gateway maps groups alike.
    other = OffsetsStore(backend, partitions=3)
    await other.start()
    assert other.partitions == 8
    await other.close()


async def test_many_offsets_in_one_commit(backend):
    """More keys in one call than may be in flight at once: all stored, in order."""
    store = await _owning(OffsetsStore(backend, partitions=2))
    commits = {("big", p): _commit(p) for p in range(2500)}
    started = time.monotonic()
    await store.write_offsets("bulk", commits)
    await store.write_offsets("bulk", {("big", 0): _commit(12345)})
    elapsed = time.monotonic() - started
    await store.close()
    model = Model(2)
    model.offsets = {("bulk", t, p): c for (t, p), c in commits.items()}
    model.offsets[("bulk", "big", 0)] = _commit(12345)
    load_s = await _assert_loads(backend, model)
    print(f"2501 commits written in {elapsed:.3f} s, loaded in {load_s:.3f} s")


async def test_write_failures_raise(backend):
    store = await _owning(OffsetsStore(backend, partitions=2))
    await store.write_offsets("fails", {("t", 0): _commit(1)})
    # Larger than Pulsar's maxMessageSize (5 MiB) even compressed: the client refuses it.
    huge = base64.b64encode(os.urandom(5 * 1024 * 1024)).decode()
    with pytest.raises(StoreError) as info:
        await store.write_offsets("fails", {("t", 0): _commit(2, huge), ("t", 1): _commit(3)})
    assert info.value.result is not None and info.value.result.name == "MessageTooBig", info.value
    # The store keeps working after a failure; the refused commit did not replace the stored one.
    await store.write_offsets("fails", {("t", 2): _commit(4)})
    loaded = await store.load(partition_for("fails", 2))
    assert loaded.offsets == {("fails", "t", 0): _commit(1), ("fails", "t", 1): _commit(3),
                              ("fails", "t", 2): _commit(4)}
    await store.close()
    with pytest.raises(StoreError):
        await store.write_offsets("fails", {("t", 0): _commit(5)})
    with pytest.raises(StoreError):
        await store.write_group(_group("fails", 1, 1))


async def test_writes_to_a_missing_namespace_raise(pulsar):
    namespace = unique("kop-store")
    backend = await _backend(namespace)
    try:
        backend.system_namespace = type(backend.system_namespace)("public", unique("kop-missing"))
        store = OffsetsStore(backend, partitions=2)  # not started: the namespace does not exist
        started = time.monotonic()
        with pytest.raises(StoreError):
            await store.acquire(0)
        with pytest.raises(NotOwner):
            await store.write_offsets("g", {("t", 0): _commit(1)})
        assert time.monotonic() - started < 60
        with pytest.raises(StoreError):
            await store.load(0)
        await store.close()
    finally:
        await backend.close()
        drop_namespace(f"public/{namespace}")


def test_partition_for_is_stable_and_spreads():
    assert partition_for("my-group", 8) == 3 == zlib.crc32(b"my-group") % 8
    assert partition_for("console-consumer-1", 8) == 2
    assert partition_for("g", 50) == 28
    assert partition_for("g-ünï-☃", 8) == zlib.crc32("g-ünï-☃".encode()) % 8
    counts = [0] * 8
    for i in range(8000):
        counts[partition_for(f"group-{i}", 8)] += 1
    assert min(counts) > 800 and max(counts) < 1200, counts
    # Another process (another hash seed) agrees.
    code = "from kop.groups.store import partition_for; print([partition_for(f'group-{i}', 8) for i in range(50)])"
    out = {seed: subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert out["1"] == out["2"] == f"{[partition_for(f'group-{i}', 8) for i in range(50)]}\n"


async def test_one_owner_per_partition_enforced_by_pulsar(backend):
    """Exclusive producers: while one store holds a partition another cannot take it or write to it;
    once released the other takes it and reads every acknowledged write of the first."""
    first = await _owning(OffsetsStore(backend, partitions=2, producer_name="kop-gateway-1"))
    second = OffsetsStore(backend, partitions=2, producer_name="kop-gateway-2")
    await second.start()
    group = "owned"
    partition = partition_for(group, 2)
    try:
        assert not await second.acquire(partition)
        with pytest.raises(NotOwner):
            await second.write_offsets(group, {("t", 0): _commit(1)})
        await first.write_offsets(group, {("t", 0): _commit(7), ("t", 1): _commit(8)})
        status, stats = admin(f"persistent/{backend.system_namespace.path}/__offsets-partition-{partition}/stats")
        assert [(p["producerName"], p["accessMode"]) for p in stats["publishers"]] == [("kop-gateway-1", "Exclusive")]
        await first.release(partition)
        assert not first.owns(partition)
        with pytest.raises(NotOwner):
            await first.write_offsets(group, {("t", 0): _commit(9)})
        assert await second.acquire(partition)
        assert (await second.load(partition)).offsets == {(group, "t", 0): _commit(7), (group, "t", 1): _commit(8)}
        await second.write_offsets(group, {("t", 0): _commit(10)})
        assert not await first.acquire(partition)
    finally:
        await first.close()
        await second.close()
