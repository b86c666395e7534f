"""The coordinator's custody of ``__offsets`` partitions: adopting and releasing them, the groups and
committed offsets they hold, and the operations that write to them. One object, composed into
:class:`kop.groups.coordinator.GroupCoordinator` (which runs the membership protocol over these
groups) and driven by groups/ownership.py (which decides what to take and release).

Ownership (several gateways; groups/ownership.py decides, Pulsar enforces). This coordinator serves
the groups of the ``__offsets`` partitions it has *taken*: :meth:`take` acquires the partition's
exclusive producer, then rebuilds its groups and offsets from ``__offsets`` before any of them is
answered (COORDINATOR_LOAD_IN_PROGRESS meanwhile); groups that had members come back
Stable with their assignments, and their members have one session timeout to heartbeat (a member
that follows the group to a new coordinator keeps its member id and generation: no rebalance).
:meth:`release` gives a partition up: new requests get NOT_COORDINATOR at once, commits already
accepted finish (written and handed to the cursor sync), pending cursor moves are flushed, waiting
joins and syncs are answered NOT_COORDINATOR (by the coordinator, told through ``on_release``; the
clients find the new coordinator and rejoin), and only then is the producer closed, so the next
owner reads every acknowledged commit.
Requests for groups of other partitions get NOT_COORDINATOR. Take and release of one partition run
one at a time (a lock per partition), so a release never closes a producer a later take opened.

A gateway cut off from Pulsar keeps its groups in memory (heartbeats still answered) until it learns
otherwise: at its first failing write (the reopened producer is fenced: the store raises
PartitionLost and the partition is released as *lost*), or when the ownership loop sees another
holder in Pulsar's stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

from ..protocol.errors import ErrorCode
from .scope import display
from .state import Group, GroupState, Member
from .store import (CommittedOffset, GroupRecord, MemberRecord, NotOwner, PartitionLost, PendingOffsets,
                    StoreError)

log = logging.getLogger(__name__)

# On adoption, commits younger than this are handed to the cursor sync again: a previous owner that
# crashed may not have synced them (it syncs within about cursor_sync_interval_s).
CURSOR_RESYNC_WINDOW_S = 60.0


class Custody:
    """The ``__offsets`` partitions this gateway holds, with their groups and offsets (module docstring).

    ``store``: the ``__offsets`` store (store.py, or a fake with its methods); ``cursor_sync``: where
    commits are mirrored (cursor_sync.py); ``on_release(group ids)``: called when groups stop being
    coordinated here, before anything is written or closed, so that their waiting requests are
    answered and their timers stopped.
    """

    def __init__(self, store, cursor_sync, on_release: Callable[[set[str]], None]) -> None:
        self._store = store
        self._cursor_sync = cursor_sync
        self._on_release = on_release
        self.groups: dict[str, Group] = {}
        self.offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
        # Offsets of transactions not ended yet, by group and (transactional id, transaction number).
        self.pending: dict[str, dict[tuple[str, int], PendingOffsets]] = {}
        self.loaded: set[int] = set()   # __offsets partitions whose groups this gateway serves
        self.loading: set[int] = set()
        self._busy: dict[int, int] = {}  # offset operations in progress, by partition
        self._idle_waiters: dict[int, list[asyncio.Future]] = {}
        self._partition_locks: dict[int, asyncio.Lock] = {}  # take and release, one at a time
        self._releases: set[asyncio.Task] = set()  # of partitions found lost by a write

    # -- the store's partitions -----------------------------------------------------------------

    @property
    def partitions(self) -> int:
        return self._store.partitions

    @property
    def topic(self):
        """The ``__offsets`` topic (a PulsarTopic)."""
        return self._store.topic

    def partition_of(self, group_id: str) -> int:
        return self._store.partition_of(group_id)

    def owns(self, partition: int) -> bool:
        """This gateway holds the partition's exclusive producer (it may still be loading)."""
        return self._store.owns(partition)

    def status(self, group_id: str) -> ErrorCode:
        """NONE when this gateway coordinates ``group_id``, else the error to answer with."""
        partition = self._store.partition_of(group_id)
        if partition in self.loaded:
            return ErrorCode.NONE
        if partition in self.loading:
            return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        return ErrorCode.NOT_COORDINATOR

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up ``__offsets`` and start the cursor sync; partitions are taken one by one later."""
        await self._store.start()
        await self._cursor_sync.start()

    async def close(self) -> None:
        """Release every partition (module docstring), then close the cursor sync and the store."""
        for partition in sorted(self.loaded | self.loading):
            await self.release(partition)
        await self._cursor_sync.close()
        await self._store.close()

    # -- taking -----------------------------------------------------------------------------------

    def _lock(self, partition: int) -> asyncio.Lock:
        return self._partition_locks.setdefault(partition, asyncio.Lock())

    async def take(self, partition: int) -> bool:
        """Acquire the partition's exclusive producer and load its groups: True if this gateway now
        coordinates them, False if another gateway holds the partition. Raises StoreError."""
        async with self._lock(partition):
            if partition in self.loaded:
                return True
            if not await self._store.acquire(partition):
                return False
            try:
                await self._adopt(partition)
            except BaseException:
                self.loading.discard(partition)
                await self._store.release(partition)
                raise
            return True

    async def _migrate_packed(self, loaded) -> None:
        """Commits made with packed offsets (before offsets.mode contiguous), translated to the
        contiguous offset of the same record, and stored so: a packed offset is never served as a
        contiguous one (store.to_contiguous says how a record that is gone is handled)."""
        by_group: dict[str, dict] = {}
        for (group_id, topic, index), commit in list(loaded.offsets.items()):
            if commit.mode == "contiguous" or commit.offset < 0:
                continue
            pulsar_topic = self._cursor_sync.partition_of(group_id, topic, index)
            try:
                offset = await self._store.to_contiguous(pulsar_topic, commit.offset)
            except Exception as exc:  # Pulsar away: the partition is adopted again later
                raise StoreError(f"translating {group_id!r} {topic}-{index}'s packed offset: {exc}") from exc
            translated = dataclasses.replace(commit, offset=offset, mode="contiguous")
            loaded.offsets[(group_id, topic, index)] = translated
            by_group.setdefault(group_id, {})[(topic, index)] = translated
            log.info("group %s: %s-%d committed packed offset %d, now contiguous offset %d", group_id, topic,
                     index, commit.offset, offset)
        for group_id, commits in by_group.items():
            await self._store.write_offsets(group_id, commits)

    async def _adopt(self, partition: int) -> None:
        """Load the groups of an ``__offsets`` partition whose producer this gateway now holds."""
        self.loading.add(partition)
        loaded = await self._store.load(partition)
        if self._store.mode == "contiguous":
            await self._migrate_packed(loaded)
        self.loading.discard(partition)
        now = time.monotonic()
        recent_ms = (time.time() - CURSOR_RESYNC_WINDOW_S) * 1000
        resynced = 0
        for (group_id, topic, index), commit in loaded.offsets.items():
            self.offsets.setdefault(group_id, {})[(topic, index)] = commit
            if commit.commit_timestamp >= recent_ms:  # the previous owner may have died before syncing it
                self._cursor_sync.note(group_id, topic, index, commit.offset)
                resynced += 1
        for group_id, record in loaded.groups.items():
            self.groups[group_id] = _group_from_record(record, now)
        for group_id, _, _ in loaded.offsets:
            self.groups.setdefault(group_id, Group(group_id))
        for (group_id, tid, number), pending in loaded.pending.items():
            self.pending.setdefault(group_id, {})[(tid, number)] = pending
            self.groups.setdefault(group_id, Group(group_id))
        self.loaded.add(partition)
        log.info("coordinating __offsets partition %d: %d groups, %d committed offsets (%d cursors resynced)",
                 partition, len(loaded.groups), len(loaded.offsets), resynced)

    async def release(self, partition: int, lost: bool = False) -> None:
        """Stop coordinating the groups of ``partition`` (see the module docstring); ``lost``: another
        gateway already owns it, so nothing more is written for them."""
        async with self._lock(partition):
            await self._release(partition, lost)

    async def _release(self, partition: int, lost: bool) -> None:
        if partition not in self.loaded and partition not in self.loading and not self._store.owns(partition):
            return
        self.loaded.discard(partition)
        self.loading.discard(partition)
        mine = {g for g in set(self.groups) | set(self.offsets) if self._store.partition_of(g) == partition}
        log.info("%s __offsets partition %d (%d groups)", "lost" if lost else "releasing", partition, len(mine))
        self._on_release(mine)
        await self._quiet(partition)
        if lost:
            self._cursor_sync.discard(mine)  # the new owner syncs them; ours could be stale
        else:
            await self._cursor_sync.flush()
        await self._store.release(partition)
        for group_id in mine:
            self.groups.pop(group_id, None)
            self.offsets.pop(group_id, None)
            self.pending.pop(group_id, None)

    async def _quiet(self, partition: int) -> None:
        """Until the commits and deletions in progress on ``partition`` have finished."""
        while self._busy.get(partition):
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.setdefault(partition, []).append(waiter)
            await waiter

    def _enter(self, group_id: str) -> int:
        """Count an offset operation on the group's partition; raises NotOwner when not coordinated here."""
        partition = self._store.partition_of(group_id)
        if partition not in self.loaded:
            raise NotOwner(f"group {group_id!r} is not coordinated by this gateway")
        self._busy[partition] = self._busy.get(partition, 0) + 1
        return partition

    def _leave(self, partition: int) -> None:
        self._busy[partition] -= 1
        if not self._busy[partition]:
            del self._busy[partition]
            for waiter in self._idle_waiters.pop(partition, []):
                if not waiter.done():
                    waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def _operation(self, group_id: str):
        """An offset operation on the group's partition: counted (a release waits for it) and, if a
        write finds the partition lost, followed by its release."""
        partition = self._enter(group_id)
        try:
            yield
        except PartitionLost as exc:
            self._lost(exc.partition)
            raise
        finally:
            self._leave(partition)

    def _lost(self, partition: int) -> None:
        """Another gateway owns ``partition`` now: let it go (in the background: the write that found
        out is still in progress, and a release waits for it)."""
        task = asyncio.ensure_future(self.release(partition, lost=True))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    # -- offsets --------------------------------------------------------------------------------

    async def commit(self, group_id: str, commits: dict[tuple[str, int], CommittedOffset]) -> None:
        """Store the commits (raises NotOwner when the group is not coordinated here, StoreError when
        the write failed), then hand them to the cursor sync."""
        async with self._operation(group_id):
            await self._store.write_offsets(group_id, commits)
            self.groups.setdefault(group_id, Group(group_id))
            self.offsets.setdefault(group_id, {}).update(commits)
            for (topic, index), commit in commits.items():
                self._cursor_sync.note(group_id, topic, index, commit.offset)

    def committed(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        return self.offsets.get(group_id, {})

    # -- offsets of transactions ----------------------------------------------------------------

    async def commit_pending(self, group_id: str, pending: PendingOffsets) -> None:
        """A transaction's offsets (TxnOffsetCommit), kept apart until it ends; merged with what the
        same transaction committed before (raises NotOwner, StoreError)."""
        async with self._operation(group_id):
            key = (pending.transactional_id, pending.number)
            earlier = self.pending.get(group_id, {}).get(key)
            if earlier is not None:
                pending = dataclasses.replace(pending, offsets={**earlier.offsets, **pending.offsets})
            await self._store.write_pending(group_id, pending)
            self.groups.setdefault(group_id, Group(group_id))
            self.pending.setdefault(group_id, {})[key] = pending

    async def resolve_pending(self, group_id: str, key: tuple[str, int], committed: bool) -> None:
        """The transaction ended: its offsets become the group's (committed) or are dropped."""
        async with self._operation(group_id):
            pending = self.pending.get(group_id, {}).get(key)
            if pending is None:
                return
            await self._store.resolve_pending(group_id, pending, committed)
            del self.pending[group_id][key]
            if not self.pending[group_id]:
                del self.pending[group_id]
            if committed:
                self.offsets.setdefault(group_id, {}).update(pending.offsets)
                for (topic, index), commit in pending.offsets.items():
                    self._cursor_sync.note(group_id, topic, index, commit.offset)

    def unstable(self, group_id: str) -> set[tuple[str, int]]:
        """Partitions with offsets of a transaction not ended yet (OffsetFetch's require_stable)."""
        return {key for pending in self.pending.get(group_id, {}).values() for key in pending.offsets}

    async def delete_offsets(self, group_id: str, keys: list[tuple[str, int]]) -> None:
        """Tombstone the commits and delete their subscriptions (raises NotOwner, StoreError)."""
        async with self._operation(group_id):
            await self._store.delete_offsets(group_id, keys)
            stored = self.offsets.get(group_id, {})
            for key in keys:
                stored.pop(key, None)
                await self._cursor_sync.remove(group_id, *key)

    async def delete_group(self, group_id: str) -> ErrorCode:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if group.members:
            return ErrorCode.NON_EMPTY_GROUP
        keys = list(self.offsets.get(group_id, {}))
        async with self._operation(group_id):
            await self._store.delete_group(group_id, keys)
            await self._cursor_sync.remove_group(group_id, keys)
        group.transition(GroupState.DEAD) if group.state is not GroupState.DEAD else None
        self.groups.pop(group_id, None)
        self.offsets.pop(group_id, None)
        return ErrorCode.NONE

    async def write_group(self, group: Group, raise_errors: bool = False) -> None:
        """Store the group's metadata (generation, members, assignments); a failure is logged, or
        raised with ``raise_errors``."""
        try:
            await self._store.write_group(_record_of(group))
        except Exception as exc:
            if isinstance(exc, PartitionLost):
                self._lost(exc.partition)
            if raise_errors:
                raise
            log.warning("group %s: storing its metadata failed", display(group.group_id), exc_info=True)


def _record_of(group: Group) -> GroupRecord:
    return GroupRecord(group.group_id, group.protocol_type, group.generation_id, group.protocol_name,
                       group.leader_id, tuple(MemberRecord(
                           m.member_id, m.group_instance_id, m.client_id, m.client_host,
                           m.rebalance_timeout_ms, m.session_timeout_ms,
                           m.metadata_for(group.protocol_name), m.assignment)
                           for m in group.members.values()), int(time.time() * 1000))


def _group_from_record(record: GroupRecord, now: float) -> Group:
    group = Group(record.group_id, generation_id=record.generation_id, protocol_type=record.protocol_type,
                  protocol_name=record.protocol_name, leader_id=record.leader)
    for m in record.members:
        group.add(Member(m.member_id, m.group_instance_id, m.client_id, m.client_host, m.session_timeout_ms,
                         m.rebalance_timeout_ms, record.protocol_type,
                         [(record.protocol_name or "", m.subscription)], m.assignment, last_seen=now))
    group.protocol_type = record.protocol_type
    group.state = GroupState.STABLE if group.members else GroupState.EMPTY
    if not group.members and record.generation_id > 0:  # written when it became Empty (cleaner.py)
        group.empty_since_ms = record.state_timestamp
    return group
