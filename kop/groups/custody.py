"""The coordinator's custody of ``__offsets`` partitions: adopting and releasing them, and the offset
operations that write to them. A base class of :class:`kop.groups.coordinator.GroupCoordinator`,
which holds the membership protocol; the state both use (groups, offsets, waiters) is created there.

Ownership (several gateways; groups/ownership.py decides, Pulsar enforces). This coordinator serves
the groups of the ``__offsets`` partitions it has *taken*: :meth:`take` acquires the partition's
exclusive producer, then rebuilds its groups and offsets from ``__offsets`` before any of them is
answered (COORDINATOR_LOAD_IN_PROGRESS meanwhile); groups that had members come back
Stable with their assignments, and their members have one session timeout to heartbeat (a member
that follows the group to a new coordinator keeps its member id and generation: no rebalance).
:meth:`release` gives a partition up: new requests get NOT_COORDINATOR at once, commits already
accepted finish (written and handed to the cursor sync), pending cursor moves are flushed, waiting
joins and syncs are answered NOT_COORDINATOR (the clients find the new coordinator and rejoin),
and only then is the producer closed, so the next owner reads every acknowledged commit.
Requests for groups of other partitions get NOT_COORDINATOR. Take and release of one partition run
one at a time (a lock per partition), so a release never closes a producer a later take opened.

A gateway cut off from Pulsar keeps its groups in memory (heartbeats still answered) until it learns
otherwise: at its first failing write (the reopened producer is fenced: the partition is *lost*), or
when the ownership loop sees another holder in Pulsar's stats.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass

from ..protocol.errors import ErrorCode
from .scope import display
from .state import Group, GroupState, Member
from .store import CommittedOffset, GroupRecord, MemberRecord, NotOwner, StoreError

log = logging.getLogger(__name__)

# On adoption, commits younger than this are handed to the cursor sync again: a previous owner that
# crashed may not have synced them (it syncs within about cursor_sync_interval_s).
CURSOR_RESYNC_WINDOW_S = 60.0


@dataclass(slots=True)
class JoinResult:
    error: ErrorCode
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    member_id: str = ""
    members: list[tuple[str, str | None, bytes]] = None  # only for the leader

    def __post_init__(self) -> None:
        if self.members is None:
            self.members = []


class Custody:
    """Partition ownership and offsets; expects the attributes GroupCoordinator.__init__ sets."""

    def status(self, group_id: str) -> ErrorCode:
        """NONE when this gateway coordinates ``group_id``, else the error to answer with."""
        partition = self.store.partition_of(group_id)
        if partition in self.loaded:
            return ErrorCode.NONE
        if partition in self.loading:
            return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        return ErrorCode.NOT_COORDINATOR

    def _lock(self, partition: int) -> asyncio.Lock:
        return self._partition_locks.setdefault(partition, asyncio.Lock())

    async def take(self, partition: int) -> bool:
        """Acquire the partition's exclusive producer and load its groups: True if this gateway now
        coordinates them, False if another gateway holds the partition. Raises StoreError."""
        async with self._lock(partition):
            if partition in self.loaded:
                return True
            if not await self.store.acquire(partition):
                return False
            try:
                await self._adopt(partition)
            except BaseException:
                self.loading.discard(partition)
                await self.store.release(partition)
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
            pulsar_topic = self.cursor_sync.partition_of(group_id, topic, index)
            try:
                offset = await self.store.to_contiguous(pulsar_topic, commit.offset)
            except Exception as exc:  # Pulsar away: the partition is adopted again later
                raise StoreError(f"translating {group_id!r} {topic}-{index}'s packed offset: {exc}") from exc
            translated = dataclasses.replace(commit, offset=offset, mode="contiguous")
            loaded.offsets[(group_id, topic, index)] = translated
            by_group.setdefault(group_id, {})[(topic, index)] = translated
            log.info("group %s: %s-%d committed packed offset %d, now contiguous offset %d", group_id, topic,
                     index, commit.offset, offset)
        for group_id, commits in by_group.items():
            await self.store.write_offsets(group_id, commits)

    async def _adopt(self, partition: int) -> None:
        """Load the groups of an ``__offsets`` partition whose producer this gateway now holds."""
        self.loading.add(partition)
        loaded = await self.store.load(partition)
        if self.store.mode == "contiguous":
            await self._migrate_packed(loaded)
        self.loading.discard(partition)
        now = time.monotonic()
        recent_ms = (time.time() - CURSOR_RESYNC_WINDOW_S) * 1000
        resynced = 0
        for (group_id, topic, index), commit in loaded.offsets.items():
            self.offsets.setdefault(group_id, {})[(topic, index)] = commit
            if commit.commit_timestamp >= recent_ms:  # the previous owner may have died before syncing it
                self.cursor_sync.note(group_id, topic, index, commit.offset)
                resynced += 1
        for group_id, record in loaded.groups.items():
            self.groups[group_id] = _group_from_record(record, now)
        for group_id, _, _ in loaded.offsets:
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
        if partition not in self.loaded and partition not in self.loading and not self.store.owns(partition):
            return
        self.loaded.discard(partition)
        self.loading.discard(partition)
        mine = [g for g in set(self.groups) | set(self.offsets) if self.store.partition_of(g) == partition]
        log.info("%s __offsets partition %d (%d groups)", "lost" if lost else "releasing", partition, len(mine))
        for group_id in mine:
            task = self._rebalances.pop(group_id, None)
            if task is not None:
                task.cancel()
        for waiters, answer in ((self._join_waiters, JoinResult(ErrorCode.NOT_COORDINATOR)),
                                (self._sync_waiters, (ErrorCode.NOT_COORDINATOR, b""))):
            for key in [k for k in waiters if k[0] in mine]:
                waiter = waiters.pop(key)
                if not waiter.done():
                    waiter.set_result(answer)
        await self._quiet(partition)
        if lost:
            self.cursor_sync.discard(set(mine))  # the new owner syncs them; ours could be stale
        else:
            await self.cursor_sync.flush()
        await self.store.release(partition)
        for group_id in mine:
            self.groups.pop(group_id, None)
            self.offsets.pop(group_id, None)

    async def _quiet(self, partition: int) -> None:
        """Until the commits and deletions in progress on ``partition`` have finished."""
        while self._busy.get(partition):
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.setdefault(partition, []).append(waiter)
            await waiter

    def _enter(self, group_id: str) -> int:
        """Count an offset operation on the group's partition; raises NotOwner when not coordinated here."""
        partition = self.store.partition_of(group_id)
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

    # -- offsets --------------------------------------------------------------------------------

    async def commit(self, group_id: str, commits: dict[tuple[str, int], CommittedOffset]) -> None:
        partition = self._enter(group_id)
        try:
            await self.store.write_offsets(group_id, commits)
            self.groups.setdefault(group_id, Group(group_id))
            self.offsets.setdefault(group_id, {}).update(commits)
            for (topic, index), commit in commits.items():
                self.cursor_sync.note(group_id, topic, index, commit.offset)
        finally:
            self._leave(partition)

    def committed(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        return self.offsets.get(group_id, {})

    async def delete_offsets(self, group_id: str, keys: list[tuple[str, int]]) -> None:
        partition = self._enter(group_id)
        try:
            await self.store.delete_offsets(group_id, keys)
            stored = self.offsets.get(group_id, {})
            for key in keys:
                stored.pop(key, None)
                await self.cursor_sync.remove(group_id, *key)
        finally:
            self._leave(partition)

    async def delete_group(self, group_id: str) -> ErrorCode:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if group.members:
            return ErrorCode.NON_EMPTY_GROUP
        keys = list(self.offsets.get(group_id, {}))
        partition = self._enter(group_id)
        try:
            await self.store.delete_group(group_id, keys)
            await self.cursor_sync.remove_group(group_id, keys)
        finally:
            self._leave(partition)
        group.transition(GroupState.DEAD) if group.state is not GroupState.DEAD else None
        self.groups.pop(group_id, None)
        self.offsets.pop(group_id, None)
        return ErrorCode.NONE

    async def _persist_group(self, group: Group, raise_errors: bool = False) -> None:
        record = GroupRecord(group.group_id, group.protocol_type, group.generation_id, group.protocol_name,
                             group.leader_id, tuple(MemberRecord(
                                 m.member_id, m.group_instance_id, m.client_id, m.client_host,
                                 m.rebalance_timeout_ms, m.session_timeout_ms,
                                 m.metadata_for(group.protocol_name), m.assignment)
                                 for m in group.members.values()), int(time.time() * 1000))
        try:
            await self.store.write_group(record)
        except Exception:
            if raise_errors:
                raise
            log.warning("group %s: storing its metadata failed", display(group.group_id), exc_info=True)


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
