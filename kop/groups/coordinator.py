"""The group coordinator: Kafka's classic membership protocol over the pure table in state.py, with
the I/O — waiting for members, timers, the ``__offsets`` store (store.py) and the cursor sync
(cursor_sync.py).

Timing, as in Kafka:
- A rebalance completes when every known member has rejoined, or when the longest rebalance
  timeout of the members has passed (members that did not rejoin are removed). A group leaving
  Empty first waits ``initial_rebalance_delay_ms`` so that members starting together land in one
  generation.
- A member that sends nothing (join, sync, heartbeat, commit) for its session timeout is removed and
  the group rebalances; that includes static members.
- A static member (group.instance.id) that restarts and rejoins with an unknown member id gets a new
  member id, keeps its assignment, and the others are not disturbed (no rebalance).

Ownership of groups (which gateway serves which) is in custody.py, the base class.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from .. import metrics
from ..protocol.errors import ErrorCode
from .cleaner import SWEEP_S, GroupCleaner
from .custody import Custody, JoinResult  # noqa: F401 (JoinResult is part of this API)
from .scope import display
from .state import Group, GroupState, Member
from .store import CommittedOffset

log = logging.getLogger(__name__)


class GroupCoordinator(Custody):
    def __init__(self, store, cursor_sync, groups_config) -> None:
        self.store = store
        self.cursor_sync = cursor_sync
        self.cfg = groups_config
        self.groups: dict[str, Group] = {}
        self.offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
        self._join_waiters: dict[tuple[str, str], asyncio.Future] = {}
        self._sync_waiters: dict[tuple[str, str], asyncio.Future] = {}
        self._rebalances: dict[str, asyncio.Task] = {}
        self._reaper: asyncio.Task | None = None
        self.rebalances_completed = 0
        self.cleaner = GroupCleaner(self)
        self.loaded: set[int] = set()   # __offsets partitions whose groups this gateway serves
        self.loading: set[int] = set()
        self._busy: dict[int, int] = {}  # offset operations in progress, by partition
        self._idle_waiters: dict[int, list[asyncio.Future]] = {}
        self._partition_locks: dict[int, asyncio.Lock] = {}  # take and release, one at a time

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up ``__offsets``; partitions are adopted one by one by the ownership loop."""
        await self.store.start()
        self.store.on_lost = lambda partition: asyncio.ensure_future(self.release(partition, lost=True))
        self._reaper = asyncio.create_task(self._expire_members())

    async def close(self) -> None:
        if self._reaper:
            self._reaper.cancel()
        for partition in sorted(self.loaded | self.loading):
            await self.release(partition)
        for task in self._rebalances.values():
            task.cancel()
        await self.cursor_sync.close()
        await self.store.close()

    # -- JoinGroup ------------------------------------------------------------------------------

    async def join(self, *, group_id: str, member_id: str, group_instance_id: str | None, client_id: str,
                   client_host: str, session_timeout_ms: int, rebalance_timeout_ms: int,
                   protocol_type: str | None, protocols: list[tuple[str, bytes]], require_known_member_id: bool
                   ) -> JoinResult:
        if not group_id:
            return JoinResult(ErrorCode.INVALID_GROUP_ID)
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return JoinResult(error, member_id=member_id)
        if not self.cfg.min_session_timeout_ms <= session_timeout_ms <= self.cfg.max_session_timeout_ms:
            return JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT)
        group = self.groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            group = self.groups[group_id] = Group(group_id)
        if not protocol_type or not group.accepts(protocol_type, protocols):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        now = time.monotonic()

        if not member_id:
            new_id = f"{client_id or 'member'}-{uuid.uuid4()}"
            if group_instance_id is not None and group_instance_id in group.static_members:
                result = self._static_rejoin(group, group_instance_id, new_id, protocols, now)
                return await result if isinstance(result, asyncio.Future) else result
            if group_instance_id is None and require_known_member_id:
                group.pending_member_ids.add(new_id)  # KIP-394: the client rejoins with this id
                return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id=new_id)
            member_id = new_id
        elif _fenced(group, member_id, group_instance_id):
            return JoinResult(ErrorCode.FENCED_INSTANCE_ID, member_id=member_id)
        elif member_id not in group.members and member_id not in group.pending_member_ids:
            return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id=member_id)

        member = group.members.get(member_id)
        if member is None:
            member = Member(member_id, group_instance_id, client_id, client_host, session_timeout_ms,
                            rebalance_timeout_ms, protocol_type, list(protocols), last_seen=now)
            group.add(member)
            if group.state is not GroupState.PREPARING_REBALANCE:
                self._prepare_rebalance(group, f"{member_id} joined")
        else:
            changed = member.protocols != list(protocols)
            member.protocols = list(protocols)
            member.session_timeout_ms, member.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
            member.last_seen = now
            if group.state is GroupState.STABLE and not changed and member_id != group.leader_id:
                return self._join_result(group, member_id)  # nothing to do: answer with the current generation
            if group.state is not GroupState.PREPARING_REBALANCE:
                self._prepare_rebalance(group, f"{member_id} rejoined" + (" with new protocols" if changed else ""))
        member.joined_this_round = True
        waiter = self._join_waiters.pop((group_id, member_id), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID))  # superseded by this join
        future = self._join_waiters[(group_id, member_id)] = asyncio.get_running_loop().create_future()
        self._maybe_complete_join(group)
        return await future

    def _static_rejoin(self, group: Group, instance_id: str, new_id: str, protocols,
                       now: float) -> JoinResult | asyncio.Future:
        old_id = group.static_members[instance_id]
        member = group.replace_static(instance_id, new_id)
        member.last_seen = now
        for waiters in (self._join_waiters, self._sync_waiters):
            old = waiters.pop((group.group_id, old_id), None)
            if old is not None and not old.done():
                old.set_result(JoinResult(ErrorCode.FENCED_INSTANCE_ID) if waiters is self._join_waiters
                               else (ErrorCode.FENCED_INSTANCE_ID, b""))
        # Kafka rebalances for a returning static member only if the group's protocol would change.
        still_supported = group.protocol_name in {name for name, _ in protocols}
        member.protocols = list(protocols)
        if group.state is GroupState.STABLE and still_supported:
            log.info("group %s: static member %s is back as %s; no rebalance", display(group.group_id), instance_id, new_id)
            asyncio.ensure_future(self._persist_group(group))
            result = self._join_result(group, new_id)
            if group.leader_id == new_id:
                # As Kafka: a returning static leader is not asked to assign again (it would compute
                # an assignment nobody uses); it is told the old leader id and no members.
                result.leader_id, result.members = old_id, []
            return result
        if group.state is not GroupState.PREPARING_REBALANCE:
            self._prepare_rebalance(group, f"static member {instance_id} rejoined")
        member.joined_this_round = True
        future = self._join_waiters[(group.group_id, new_id)] = asyncio.get_running_loop().create_future()
        self._maybe_complete_join(group)
        return future

    def _join_result(self, group: Group, member_id: str) -> JoinResult:
        members = []
        if member_id == group.leader_id:
            members = [(m.member_id, m.group_instance_id, m.metadata_for(group.protocol_name))
                       for m in group.members.values()]
        return JoinResult(ErrorCode.NONE, group.generation_id, group.protocol_type, group.protocol_name,
                          group.leader_id or "", member_id, members)

    def _prepare_rebalance(self, group: Group, reason: str) -> None:
        was_empty = group.state is GroupState.EMPTY
        if group.state is GroupState.COMPLETING_REBALANCE:
            for key in [k for k in self._sync_waiters if k[0] == group.group_id]:
                waiter = self._sync_waiters.pop(key)
                if not waiter.done():
                    waiter.set_result((ErrorCode.REBALANCE_IN_PROGRESS, b""))
        group.transition(GroupState.PREPARING_REBALANCE)
        group.rebalance_started = time.monotonic()
        log.info("group %s: rebalancing (%s), generation %d", display(group.group_id), reason, group.generation_id)
        task = self._rebalances.pop(group.group_id, None)
        if task is not None:
            task.cancel()
        delay = self.cfg.initial_rebalance_delay_ms / 1000 if was_empty else 0.0
        group.rebalance_delay_until = group.rebalance_started + delay
        self._rebalances[group.group_id] = asyncio.ensure_future(self._rebalance_deadline(group, delay))

    async def _rebalance_deadline(self, group: Group, initial_delay: float) -> None:
        """Complete the rebalance once the initial delay has passed and everyone rejoined, or at the
        rebalance timeout whatever happened."""
        try:
            if initial_delay:
                await asyncio.sleep(initial_delay)
            timeout = group.rebalance_timeout_ms() / 1000
            deadline = group.rebalance_started + max(timeout, initial_delay)
            while group.state is GroupState.PREPARING_REBALANCE:
                if group.all_rejoined() or time.monotonic() >= deadline:
                    self._complete_join(group)
                    return
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass
        finally:  # a finished deadline must not outlive its rebalance (one per group id ever seen)
            if self._rebalances.get(group.group_id) is asyncio.current_task():
                del self._rebalances[group.group_id]

    def _maybe_complete_join(self, group: Group) -> None:
        delay_pending = time.monotonic() < group.rebalance_delay_until  # only when it left Empty
        if group.state is GroupState.PREPARING_REBALANCE and group.all_rejoined() and not delay_pending:
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        if group.state is not GroupState.PREPARING_REBALANCE:
            return
        departed = [m for m in group.members.values() if not m.joined_this_round]
        group.complete_rebalance()
        self.rebalances_completed += 1
        metrics.GROUP_REBALANCES.labels(metrics.group_label(display(group.group_id))).inc()
        for member in departed:
            waiter = self._join_waiters.pop((group.group_id, member.member_id), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID))
        log.info("group %s: generation %d with %d members, protocol %s, leader %s", display(group.group_id),
                 group.generation_id, len(group.members), group.protocol_name, group.leader_id)
        now = time.monotonic()
        for member in group.members.values():
            member.last_seen = now
            waiter = self._join_waiters.pop((group.group_id, member.member_id), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(self._join_result(group, member.member_id))
        if group.state is GroupState.EMPTY:
            group.empty_since_ms = int(time.time() * 1000)  # kept by the record: cleaner.py
            asyncio.ensure_future(self._persist_group(group))

    # -- SyncGroup ------------------------------------------------------------------------------

    async def sync(self, *, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int,
                   protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> tuple[ErrorCode, bytes]:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error, b""
        group = self.groups.get(group_id)
        if group is not None and _fenced(group, member_id, group_instance_id):
            return ErrorCode.FENCED_INSTANCE_ID, b""
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID, b""
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION, b""
        if (protocol_type is not None and protocol_type != group.protocol_type) or \
                (protocol_name is not None and protocol_name != group.protocol_name):
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL, b""
        member = group.members[member_id]
        member.last_seen = time.monotonic()
        if group.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS, b""
        if group.state is GroupState.STABLE:
            return ErrorCode.NONE, member.assignment
        future = self._sync_waiters[(group_id, member_id)] = asyncio.get_running_loop().create_future()
        if member_id == group.leader_id:
            for other in group.members.values():
                other.assignment = assignments.get(other.member_id, b"")
            try:
                await self._persist_group(group, raise_errors=True)
            except Exception as exc:
                log.warning("group %s: storing the assignment failed: %r", display(group_id), exc)
                self._prepare_rebalance(group, "the assignment could not be stored")
                return ErrorCode.COORDINATOR_NOT_AVAILABLE, b""
            if group.state is GroupState.COMPLETING_REBALANCE:
                group.transition(GroupState.STABLE)
                for key in [k for k in self._sync_waiters if k[0] == group_id]:
                    waiter = self._sync_waiters.pop(key)
                    if not waiter.done():
                        waiter.set_result((ErrorCode.NONE, group.members[key[1]].assignment
                                           if key[1] in group.members else b""))
        return await future

    # -- Heartbeat, LeaveGroup ------------------------------------------------------------------

    def heartbeat(self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int) -> ErrorCode:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error
        group = self.groups.get(group_id)
        if group is not None and _fenced(group, member_id, group_instance_id):
            return ErrorCode.FENCED_INSTANCE_ID
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation_id != group.generation_id:  # Kafka's order: the generation before the state
            return ErrorCode.ILLEGAL_GENERATION
        group.members[member_id].last_seen = time.monotonic()
        if group.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave(self, group_id: str, members: list[tuple[str, str | None]]) -> tuple[ErrorCode, list[ErrorCode]]:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error, [error for _ in members]
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID for _ in members]
        results = []
        left = []
        for member_id, instance_id in members:
            if instance_id is not None:
                known = group.static_members.get(instance_id)
                if known is None:
                    results.append(ErrorCode.UNKNOWN_MEMBER_ID)
                    continue
                if member_id and member_id != known:
                    results.append(ErrorCode.FENCED_INSTANCE_ID)
                    continue
                member_id = known
            if member_id not in group.members:
                results.append(ErrorCode.UNKNOWN_MEMBER_ID)
                continue
            self._drop_member(group, member_id)
            left.append(member_id)
            results.append(ErrorCode.NONE)
        if left:
            self._after_departure(group, f"{', '.join(left)} left")
        return ErrorCode.NONE, results

    def _drop_member(self, group: Group, member_id: str) -> None:
        group.remove(member_id)
        for waiters, answer in ((self._join_waiters, JoinResult(ErrorCode.UNKNOWN_MEMBER_ID)),
                                (self._sync_waiters, (ErrorCode.UNKNOWN_MEMBER_ID, b""))):
            waiter = waiters.pop((group.group_id, member_id), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(answer)

    def _after_departure(self, group: Group, reason: str) -> None:
        if group.state is GroupState.PREPARING_REBALANCE:
            self._maybe_complete_join(group)
        elif group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, reason)
            self._maybe_complete_join(group)

    async def _expire_members(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            rounds += 1
            if rounds % int(SWEEP_S / 0.5) == 0:
                await self.cleaner.sweep()
            for group in list(self.groups.values()):
                expired = [m.member_id for m in group.members.values()
                           if (group.group_id, m.member_id) not in self._join_waiters
                           and now - m.last_seen > m.session_timeout_ms / 1000]
                for member_id in expired:
                    log.info("group %s: member %s expired (no heartbeat)", display(group.group_id), member_id)
                    self._drop_member(group, member_id)
                if expired:
                    self._after_departure(group, "session timeout")

    # -- offsets --------------------------------------------------------------------------------

    def check_commit(self, group_id: str, generation_id: int, member_id: str,
                     group_instance_id: str | None) -> ErrorCode:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error
        group = self.groups.get(group_id)
        if generation_id < 0 and (group is None or group.state is GroupState.EMPTY or not group.members):
            return ErrorCode.NONE  # a consumer using assign() with a group id: "simple" commits
        if group is not None and _fenced(group, member_id, group_instance_id):
            return ErrorCode.FENCED_INSTANCE_ID
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.state is GroupState.COMPLETING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        group.members[member_id].last_seen = time.monotonic()
        return ErrorCode.NONE

def _fenced(group: Group, member_id: str, group_instance_id: str | None) -> bool:
    """A known static instance presented with a member id that is not its current one."""
    if group_instance_id is None or group_instance_id not in group.static_members:
        return False
    return group.static_members[group_instance_id] != member_id
