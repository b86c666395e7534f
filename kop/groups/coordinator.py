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

Composed of: the custody of ``__offsets`` partitions and the groups and offsets in them
(custody.py), the waiters of joins and syncs (answers.py), the offsets cleaner (cleaner.py) and two
background loops (kop/tasks.py): member expiry and the cleaner's sweeps. Handlers use the public
methods below only; what they show of a group comes from :meth:`describe` and :meth:`list_groups`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable

from .. import metrics
from ..protocol.errors import ErrorCode
from ..tasks import Periodic
from . import scope
from .answers import (GroupDescription, GroupListing, JoinResult, MemberDescription, SyncResult, Waiters,
                      assignment_of)
from .cleaner import SWEEP_S, GroupCleaner
from .custody import Custody
from .rebalance import Rebalances, join_result
from .scope import display
from .state import Group, GroupState, Member
from .store import CommittedOffset, NotOwner
from .txn_offsets import TxnOffsetsResolver

log = logging.getLogger(__name__)

# How often members are checked for an expired session (seconds): a member goes at most this late.
EXPIRY_INTERVAL_S = 0.5


class GroupCoordinator:
    def __init__(self, store, cursor_sync, groups_config, *, expiry_interval_s: float = EXPIRY_INTERVAL_S,
                 sweep_interval_s: float = SWEEP_S, transactions=None) -> None:
        """``transactions``: the view of ``__transactions`` (kop/txn/view.py) when transactions are
        served: it tells when the offsets of a transaction become the group's (txn_offsets.py)."""
        self.cfg = groups_config
        self.cursor_sync = cursor_sync
        self.custody = Custody(store, cursor_sync, on_release=self._released)
        self._groups = self.custody.groups  # the same dict: custody fills and empties it
        self._joins: Waiters[JoinResult] = Waiters(JoinResult)
        self._syncs: Waiters[SyncResult] = Waiters(SyncResult)
        self._rebalance = Rebalances(groups_config.initial_rebalance_delay_ms / 1000, self._joins, self._syncs,
                                     persist=self.custody.write_group)
        self.cleaner = GroupCleaner(self.custody, groups_config)
        self._expiry = Periodic("member expiry", expiry_interval_s, self._expire_members, logger=log, stop_wait_s=0)
        self._sweeps = Periodic("offsets cleaner", sweep_interval_s, self.cleaner.sweep, logger=log, stop_wait_s=0)
        self._resolver = TxnOffsetsResolver(self.custody, transactions) if transactions is not None else None

    @property
    def rebalances_completed(self) -> int:
        return self._rebalance.completed

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up ``__offsets`` and the cursor sync; partitions are adopted one by one by the ownership loop."""
        await self.custody.start()
        self._expiry.start()
        self._sweeps.start()
        if self._resolver is not None:
            self._resolver.start()

    async def close(self) -> None:
        await self._expiry.stop()
        await self._sweeps.stop()
        if self._resolver is not None:
            await self._resolver.stop()
        await self.custody.close()
        self._rebalance.cancel_all()

    def _released(self, group_ids: set[str]) -> None:
        """Custody let these groups go: their timers stop, their waiting members hear NOT_COORDINATOR."""
        self._rebalance.cancel(group_ids)
        self._joins.fail_all(group_ids, ErrorCode.NOT_COORDINATOR)
        self._syncs.fail_all(group_ids, ErrorCode.NOT_COORDINATOR)

    def status(self, group_id: str) -> ErrorCode:
        """NONE when this gateway coordinates ``group_id``, else the error to answer with."""
        return self.custody.status(group_id)

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
        group = self._groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            group = self._groups[group_id] = Group(group_id)
        if not protocol_type or not group.accepts(protocol_type, protocols):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        now = time.monotonic()

        if not member_id:
            new_id = f"{client_id or 'member'}-{uuid.uuid4()}"
            if group_instance_id is not None and group_instance_id in group.static_members:
                return await self._static_rejoin(group, group_instance_id, new_id, protocols, now)
            if group_instance_id is None and require_known_member_id:
                group.pending_member_ids.add(new_id)  # KIP-394: the client rejoins with this id
                return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id=new_id)
            member_id = new_id
        elif group.fenced(member_id, group_instance_id):
            return JoinResult(ErrorCode.FENCED_INSTANCE_ID, member_id=member_id)
        elif member_id not in group.members and member_id not in group.pending_member_ids:
            return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id=member_id)

        member = group.members.get(member_id)
        if member is None:
            member = Member(member_id, group_instance_id, client_id, client_host, session_timeout_ms,
                            rebalance_timeout_ms, protocol_type, list(protocols), last_seen=now)
            group.add(member)
            if group.state is not GroupState.PREPARING_REBALANCE:
                self._rebalance.prepare(group, f"{member_id} joined")
        else:
            changed = member.protocols != list(protocols)
            member.protocols = list(protocols)
            member.session_timeout_ms, member.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
            member.last_seen = now
            if group.state is GroupState.STABLE and not changed and member_id != group.leader_id:
                return join_result(group, member_id)  # nothing to do: the current generation
            if group.state is not GroupState.PREPARING_REBALANCE:
                self._rebalance.prepare(group, f"{member_id} rejoined" + (" with new protocols" if changed else ""))
        member.joined_this_round = True
        future = self._joins.wait(group_id, member_id)  # an earlier join of this member is superseded
        self._rebalance.maybe_complete(group)
        return await future

    async def _static_rejoin(self, group: Group, instance_id: str, new_id: str, protocols, now: float) -> JoinResult:
        old_id = group.static_members[instance_id]
        member = group.replace_static(instance_id, new_id)
        member.last_seen = now
        self._joins.fail(group.group_id, old_id, ErrorCode.FENCED_INSTANCE_ID)
        self._syncs.fail(group.group_id, old_id, ErrorCode.FENCED_INSTANCE_ID)
        # Kafka rebalances for a returning static member only if the group's protocol would change.
        still_supported = group.protocol_name in {name for name, _ in protocols}
        member.protocols = list(protocols)
        if group.state is GroupState.STABLE and still_supported:
            log.info("group %s: static member %s is back as %s; no rebalance", display(group.group_id), instance_id, new_id)
            asyncio.ensure_future(self.custody.write_group(group))
            result = join_result(group, new_id)
            if group.leader_id == new_id:
                # As Kafka: a returning static leader is not asked to assign again (it would compute
                # an assignment nobody uses); it is told the old leader id and no members.
                result.leader_id, result.members = old_id, []
            return result
        if group.state is not GroupState.PREPARING_REBALANCE:
            self._rebalance.prepare(group, f"static member {instance_id} rejoined")
        member.joined_this_round = True
        future = self._joins.wait(group.group_id, new_id)
        self._rebalance.maybe_complete(group)
        return await future

    # -- SyncGroup ------------------------------------------------------------------------------

    async def sync(self, *, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int,
                   protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> SyncResult:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return SyncResult(error)
        group = self._groups.get(group_id)
        if group is not None and group.fenced(member_id, group_instance_id):
            return SyncResult(ErrorCode.FENCED_INSTANCE_ID)
        if group is None or member_id not in group.members:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        if generation_id != group.generation_id:
            return SyncResult(ErrorCode.ILLEGAL_GENERATION)
        if (protocol_type is not None and protocol_type != group.protocol_type) or \
                (protocol_name is not None and protocol_name != group.protocol_name):
            return SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        member = group.members[member_id]
        member.last_seen = time.monotonic()
        if group.state is GroupState.PREPARING_REBALANCE:
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        if group.state is GroupState.STABLE:
            return assignment_of(group, member_id)
        future = self._syncs.wait(group_id, member_id)
        if member_id == group.leader_id:
            for other in group.members.values():
                other.assignment = assignments.get(other.member_id, b"")
            try:
                await self.custody.write_group(group, raise_errors=True)
            except Exception as exc:
                log.warning("group %s: storing the assignment failed: %r", display(group_id), exc)
                self._rebalance.prepare(group, "the assignment could not be stored")
                return SyncResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
            if group.state is GroupState.COMPLETING_REBALANCE:
                group.transition(GroupState.STABLE)
                self._syncs.answer_all(group_id, lambda waiting_id: assignment_of(group, waiting_id))
        return await future

    # -- Heartbeat, LeaveGroup ------------------------------------------------------------------

    def heartbeat(self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int) -> ErrorCode:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error
        group = self._groups.get(group_id)
        if group is not None and group.fenced(member_id, group_instance_id):
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
        group = self._groups.get(group_id)
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
            self._rebalance.after_departure(group, f"{', '.join(left)} left")
        return ErrorCode.NONE, results

    def _drop_member(self, group: Group, member_id: str) -> None:
        group.remove(member_id)
        self._joins.fail(group.group_id, member_id, ErrorCode.UNKNOWN_MEMBER_ID)
        self._syncs.fail(group.group_id, member_id, ErrorCode.UNKNOWN_MEMBER_ID)

    async def _expire_members(self) -> None:
        """Remove the members whose session timed out (a member waiting for its join is not expired)."""
        now = time.monotonic()
        for group in list(self._groups.values()):
            expired = [m.member_id for m in group.members.values()
                       if not self._joins.waiting(group.group_id, m.member_id)
                       and now - m.last_seen > m.session_timeout_ms / 1000]
            for member_id in expired:
                log.info("group %s: member %s expired (no heartbeat)", display(group.group_id), member_id)
                self._drop_member(group, member_id)
            if expired:
                self._rebalance.after_departure(group, "session timeout")

    # -- offsets --------------------------------------------------------------------------------

    def check_commit(self, group_id: str, generation_id: int, member_id: str,
                     group_instance_id: str | None) -> ErrorCode:
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error
        group = self._groups.get(group_id)
        if generation_id < 0 and (group is None or group.state is GroupState.EMPTY or not group.members):
            return ErrorCode.NONE  # a consumer using assign() with a group id: "simple" commits
        if group is not None and group.fenced(member_id, group_instance_id):
            return ErrorCode.FENCED_INSTANCE_ID
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.state is GroupState.COMPLETING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        group.members[member_id].last_seen = time.monotonic()
        return ErrorCode.NONE

    async def commit(self, group_id: str, commits: dict[tuple[str, int], CommittedOffset]) -> None:
        """Store the commits (after :meth:`check_commit`); raises NotOwner when the group moved
        away meanwhile, StoreError when ``__offsets`` could not be written."""
        await self.custody.commit(group_id, commits)

    def committed(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        return self.custody.committed(group_id)

    async def commit_transactional(self, group_id: str, transactional_id: str, producer_id: int,
                                   producer_epoch: int, commits: dict[tuple[str, int], CommittedOffset]) -> ErrorCode:
        """TxnOffsetCommit (after :meth:`check_commit`): the offsets wait for their transaction's
        outcome (txn_offsets.py). Raises NotOwner, StoreError."""
        if self._resolver is None:
            return ErrorCode.UNSUPPORTED_VERSION
        return await self._resolver.commit(group_id, transactional_id, producer_id, producer_epoch, commits)

    def unstable(self, group_id: str) -> set[tuple[str, int]]:
        """Partitions whose offsets wait for a transaction (OffsetFetch answers them
        UNSTABLE_OFFSET_COMMIT when asked for stable offsets)."""
        return self.custody.unstable(group_id)

    def all_committed(self) -> list[tuple[str, dict[tuple[str, int], CommittedOffset]]]:
        """Every group's commits held here (the lag metric's input)."""
        return list(self.custody.offsets.items())

    async def delete_offsets(self, group_id: str, keys: Iterable[tuple[str, int]],
                             topics_of: Callable[[bytes], Iterable[str]]
                             ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        """Kafka's OffsetDelete: the group's error, else an error per (topic, partition). A commit on
        a topic a member of a ``consumer`` group subscribes to stays (GROUP_SUBSCRIBED_TO_TOPIC);
        ``topics_of(metadata)`` reads a member's subscription. Another protocol type has no
        subscriptions to read: while it has members, the whole request is NON_EMPTY_GROUP."""
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return error, {}
        group = self._groups.get(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND, {}
        if group.members and group.protocol_type != "consumer":
            return ErrorCode.NON_EMPTY_GROUP, {}
        subscribed = group.subscribed_topics(topics_of)
        results = {key: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC if key[0] in subscribed else ErrorCode.NONE
                   for key in keys}
        deletable = [key for key, error in results.items() if error == ErrorCode.NONE]
        if deletable:
            try:
                await self.custody.delete_offsets(group_id, deletable)
            except NotOwner:  # the group moved to another gateway meanwhile
                return ErrorCode.NOT_COORDINATOR, {}
        return ErrorCode.NONE, results

    async def delete_group(self, group_id: str) -> ErrorCode:
        """Kafka's DeleteGroups for one group: only one without members (NON_EMPTY_GROUP)."""
        try:
            return await self.custody.delete_group(group_id)
        except NotOwner:  # the group moved to another gateway meanwhile
            return ErrorCode.NOT_COORDINATOR

    # -- what clients see of the groups ----------------------------------------------------------

    def describe(self, group_id: str) -> GroupDescription:
        """Kafka's DescribeGroups for one group: metadata once a protocol is chosen (Completing,
        Stable), assignments once Stable; a group nobody knows is "Dead"."""
        if (error := self.status(group_id)) != ErrorCode.NONE:
            return GroupDescription(error)
        group = self._groups.get(group_id)
        if group is None:
            return GroupDescription(ErrorCode.NONE, GroupState.DEAD.value)
        chosen = group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE)
        stable = group.state is GroupState.STABLE
        members = [MemberDescription(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                                     m.metadata_for(group.protocol_name) if chosen else b"",
                                     m.assignment if stable else b"")
                   for m in group.members.values()]
        return GroupDescription(ErrorCode.NONE, group.state.value, group.protocol_type or "",
                                (group.protocol_name or "") if chosen else "", members)

    def list_groups(self, namespace: str | None, states: set[str] = frozenset()
                    ) -> tuple[ErrorCode, list[GroupListing]]:
        """Kafka's ListGroups: the groups of ``namespace`` (groups/scope.py; None: the default one)
        coordinated here, in one of ``states`` (lower-case state names; empty: any). While partitions
        are loading, the groups known so far with COORDINATOR_LOAD_IN_PROGRESS, as Kafka."""
        listed = [GroupListing(name, group.protocol_type or "", group.state.value)
                  for group in list(self._groups.values())
                  if not states or group.state.value.lower() in states
                  for group_namespace, name in [scope.split(group.group_id)] if group_namespace == namespace]
        error = ErrorCode.COORDINATOR_LOAD_IN_PROGRESS if self.custody.loading else ErrorCode.NONE
        return error, listed

    def census(self) -> list[tuple[str, GroupState, int]]:
        """(group id, state, members) of every group held here, every namespace (the metrics')."""
        return [(group_id, group.state, len(group.members)) for group_id, group in list(self._groups.items())]
