"""In-memory stand-ins for what the group coordinator reaches Pulsar through: the ``__offsets`` store
(kop/groups/store.py) and the cursor sync (kop/groups/cursor_sync.py). No Pulsar, no sockets.

The fake store keeps each partition's latest value per key encoded with the real record format
(kop/groups/offsets_format.py) and loads it back with the same ``apply_record`` the real store uses,
so a coordinator that releases a partition and takes it again (or a second coordinator on the same
store) sees what a restarted gateway would see.
"""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace

from kop.config import GroupsConfig
from kop.groups.coordinator import GroupCoordinator
from kop.groups.offsets_format import (CommittedOffset, LoadedPartition, PendingOffsets, apply_record, encode_group,
                                       encode_offset, encode_pending, group_key, offset_key, partition_for,
                                       pending_key)
from kop.groups.store import NotOwner, PartitionLost, StoreError

# Tiny timeouts, so that every rebalance and expiry of these tests takes milliseconds.
CONFIG = dataclasses.replace(GroupsConfig(), initial_rebalance_delay_ms=0, min_session_timeout_ms=10,
                             empty_group_retention_s=0.05)
SESSION_MS = 10_000   # members that should not expire during a test
REBALANCE_MS = 2_000  # a rebalance that everybody joins completes long before this


class FakeStore:
    """The OffsetsStore interface the coordinator's custody uses, in memory."""

    def __init__(self, partitions: int = 4) -> None:
        self.partitions = partitions
        self.topic = SimpleNamespace(url="persistent://kop/system/__offsets")
        self.mode = "packed"
        self.records: dict[int, dict[str, bytes]] = {p: {} for p in range(partitions)}
        self.held: set[int] = set()
        self.held_elsewhere: set[int] = set()  # acquire() answers False
        self.lost: set[int] = set()            # the next write raises PartitionLost
        self.fail_writes = False               # writes raise StoreError (Pulsar away)
        self.load_gate: asyncio.Event | None = None  # load() waits for it when set
        self.started = self.closed = False

    def partition_of(self, group_id: str) -> int:
        return partition_for(group_id, self.partitions)

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True
        self.held.clear()

    def owns(self, partition: int) -> bool:
        return partition in self.held

    async def acquire(self, partition: int) -> bool:
        if partition in self.held_elsewhere:
            return False
        self.held.add(partition)
        return True

    async def release(self, partition: int) -> None:
        self.held.discard(partition)

    async def load(self, partition: int) -> LoadedPartition:
        if self.load_gate is not None:
            await self.load_gate.wait()
        loaded = LoadedPartition()
        for key, value in self.records[partition].items():
            apply_record(loaded, key, value)
        return loaded

    async def to_contiguous(self, topic, packed: int) -> int:
        return packed

    # -- writes, as the real store's ---------------------------------------------------------------

    async def write_offsets(self, group_id: str, commits: dict[tuple[str, int], CommittedOffset]) -> None:
        self._write(group_id, {offset_key(group_id, t, p): encode_offset(c, self.mode) for (t, p), c in commits.items()})

    async def delete_offsets(self, group_id: str, keys: list[tuple[str, int]]) -> None:
        self._write(group_id, {offset_key(group_id, t, p): None for t, p in keys})

    async def write_pending(self, group_id: str, pending: PendingOffsets) -> None:
        self._write(group_id, {pending_key(group_id, pending.transactional_id, pending.number):
                               encode_pending(pending, self.mode)})

    async def resolve_pending(self, group_id: str, pending: PendingOffsets, committed: bool) -> None:
        commits = {offset_key(group_id, t, p): encode_offset(c, self.mode)
                   for (t, p), c in pending.offsets.items()} if committed else {}
        self._write(group_id, {**commits, pending_key(group_id, pending.transactional_id, pending.number): None})

    async def write_group(self, record) -> None:
        self._write(record.group_id, {group_key(record.group_id): encode_group(record)})

    async def delete_group(self, group_id: str, offsets: list[tuple[str, int]]) -> None:
        self._write(group_id, {group_key(group_id): None, **{offset_key(group_id, t, p): None for t, p in offsets}})

    def _write(self, group_id: str, values: dict[str, bytes | None]) -> None:
        partition = self.partition_of(group_id)
        if partition in self.lost:
            self.lost.discard(partition)
            self.held.discard(partition)
            raise PartitionLost(partition, f"partition {partition} is owned by another gateway now")
        if partition not in self.held:
            raise NotOwner(f"partition {partition} is not owned")
        if self.fail_writes:
            raise StoreError("Pulsar is away")
        for key, value in values.items():
            if value is None:
                self.records[partition].pop(key, None)
            else:
                self.records[partition][key] = value

    def stored(self, partition: int) -> LoadedPartition:
        loaded = LoadedPartition()
        for key, value in self.records[partition].items():
            apply_record(loaded, key, value)
        return loaded


class FakeCursorSync:
    """Remembers what the coordinator asked of the cursor sync."""

    def __init__(self) -> None:
        self.notes: dict[tuple[str, str, int], int] = {}
        self.removed: list[tuple[str, str, int]] = []
        self.removed_groups: list[str] = []
        self.discarded: set[str] = set()
        self.flushes = 0
        self.running = False

    async def start(self) -> None:
        self.running = True

    async def close(self) -> None:
        self.running = False

    def note(self, group: str, topic: str, partition: int, offset: int) -> None:
        self.notes[(group, topic, partition)] = offset

    def discard(self, groups: set[str]) -> None:
        self.discarded |= set(groups)

    async def flush(self) -> None:
        self.flushes += 1

    async def remove(self, group: str, topic: str, partition: int) -> None:
        self.removed.append((group, topic, partition))

    async def remove_group(self, group: str, partitions: list[tuple[str, int]]) -> None:
        self.removed_groups.append(group)

    def partition_of(self, group: str, topic: str, partition: int):
        return SimpleNamespace(url=f"persistent://public/default/{topic}-partition-{partition}")

    def subscription(self, group: str) -> str:
        return "kafka-group-" + group


async def started_coordinator(store: FakeStore, sync: FakeCursorSync, config=CONFIG, **timing) -> GroupCoordinator:
    """A coordinator holding every partition of ``store``; member expiry checked every 10 ms."""
    coordinator = GroupCoordinator(store, sync, config, **{"expiry_interval_s": 0.01, **timing})
    await coordinator.start()
    for partition in range(store.partitions):
        assert await coordinator.custody.take(partition)
    return coordinator


def join(coordinator: GroupCoordinator, group_id: str, member_id: str = "", *, instance: str | None = None,
         protocols: list[tuple[str, bytes]] | None = None, protocol_type: str = "consumer",
         session_ms: int = SESSION_MS, rebalance_ms: int = REBALANCE_MS, require_known: bool = False):
    """A JoinGroup, as a task (it may wait for the others)."""
    return asyncio.ensure_future(coordinator.join(
        group_id=group_id, member_id=member_id, group_instance_id=instance, client_id="client",
        client_host="/127.0.0.1", session_timeout_ms=session_ms, rebalance_timeout_ms=rebalance_ms,
        protocol_type=protocol_type, protocols=protocols if protocols is not None else [("range", b"meta")],
        require_known_member_id=require_known))


def sync(coordinator: GroupCoordinator, group_id: str, member_id: str, generation: int,
         assignments: dict[str, bytes] | None = None, *, instance: str | None = None):
    """A SyncGroup, as a task (a follower waits for the leader's)."""
    return asyncio.ensure_future(coordinator.sync(
        group_id=group_id, member_id=member_id, group_instance_id=instance, generation_id=generation,
        protocol_type=None, protocol_name=None, assignments=assignments or {}))


async def settle(task, timeout_s: float = 2.0):
    return await asyncio.wait_for(task, timeout_s)


async def pending(task, for_s: float = 0.03) -> bool:
    """The task is still waiting after ``for_s``."""
    await asyncio.sleep(for_s)
    return not task.done()


async def eventually(check, timeout_s: float = 2.0, step_s: float = 0.005) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {check}")
        await asyncio.sleep(step_s)
