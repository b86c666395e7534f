"""When a group's rebalance starts and ends: the timers of the coordinator (coordinator.py).

A rebalance starts (Preparing) when a member joins, rejoins with other protocols, leaves or expires.
It completes (Completing, or Empty when nobody is left) as soon as every known member has rejoined
-- but not before ``initial_rebalance_delay_ms`` for a group that left Empty, so that members starting
together land in one generation -- and at the latest when the longest rebalance timeout of the members
has passed; members that did not rejoin by then are removed and their joins answered
UNKNOWN_MEMBER_ID. On completion every waiting join is answered with the new generation (the leader
also gets the members and their metadata). A rebalance that starts while the group is Completing
answers the waiting syncs REBALANCE_IN_PROGRESS.

One deadline task per group in Preparing; it is cancelled when the group is released (custody.py)
and when a newer rebalance of the group starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from .. import metrics
from ..protocol.errors import ErrorCode
from .answers import JoinResult, SyncResult, Waiters
from .scope import display
from .state import Group, GroupState

log = logging.getLogger(__name__)

# How often a rebalance's deadline task looks at the group (seconds): joins that complete it trigger
# the completion at once; this only bounds how late the timeout itself is noticed.
DEADLINE_POLL_S = 0.05


class Rebalances:
    """``persist(group)``: store the group's metadata (a failure is logged there, not raised)."""

    def __init__(self, initial_delay_s: float, joins: Waiters[JoinResult], syncs: Waiters[SyncResult],
                 persist: Callable[[Group], Awaitable[None]]) -> None:
        self.initial_delay_s = initial_delay_s
        self._joins = joins
        self._syncs = syncs
        self._persist = persist
        self._deadlines: dict[str, asyncio.Task] = {}
        self.completed = 0  # rebalances completed since start

    def prepare(self, group: Group, reason: str) -> None:
        """Start a rebalance of ``group`` (Stable, Completing or Empty -> Preparing)."""
        was_empty = group.state is GroupState.EMPTY
        if group.state is GroupState.COMPLETING_REBALANCE:
            self._syncs.fail_all([group.group_id], ErrorCode.REBALANCE_IN_PROGRESS)
        group.transition(GroupState.PREPARING_REBALANCE)
        group.rebalance_started = time.monotonic()
        log.info("group %s: rebalancing (%s), generation %d", display(group.group_id), reason, group.generation_id)
        self.cancel([group.group_id])
        delay = self.initial_delay_s if was_empty else 0.0
        group.rebalance_delay_until = group.rebalance_started + delay
        self._deadlines[group.group_id] = asyncio.ensure_future(self._deadline(group, delay))

    async def _deadline(self, group: Group, initial_delay: float) -> None:
        """Complete the rebalance once the initial delay has passed and everyone rejoined, or at the
        rebalance timeout whatever happened."""
        try:
            if initial_delay:
                await asyncio.sleep(initial_delay)
            timeout = group.rebalance_timeout_ms() / 1000
            deadline = group.rebalance_started + max(timeout, initial_delay)
            while group.state is GroupState.PREPARING_REBALANCE:
                if group.all_rejoined() or time.monotonic() >= deadline:
                    self._complete(group)
                    return
                await asyncio.sleep(DEADLINE_POLL_S)
        except asyncio.CancelledError:
            pass
        finally:  # a finished deadline must not outlive its rebalance (one per group id ever seen)
            if self._deadlines.get(group.group_id) is asyncio.current_task():
                del self._deadlines[group.group_id]

    def maybe_complete(self, group: Group) -> None:
        """Complete the rebalance now if everyone rejoined (and the initial delay is over)."""
        delay_pending = time.monotonic() < group.rebalance_delay_until  # only when it left Empty
        if group.state is GroupState.PREPARING_REBALANCE and group.all_rejoined() and not delay_pending:
            self._complete(group)

    def after_departure(self, group: Group, reason: str) -> None:
        """Members left or expired: the others rebalance (or the running rebalance may be complete)."""
        if group.state is GroupState.PREPARING_REBALANCE:
            self.maybe_complete(group)
        elif group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self.prepare(group, reason)
            self.maybe_complete(group)

    def _complete(self, group: Group) -> None:
        if group.state is not GroupState.PREPARING_REBALANCE:
            return
        departed = [m.member_id for m in group.members.values() if not m.joined_this_round]
        group.complete_rebalance()
        self.completed += 1
        metrics.GROUP_REBALANCES.labels(metrics.group_label(display(group.group_id))).inc()
        for member_id in departed:
            self._joins.fail(group.group_id, member_id, ErrorCode.UNKNOWN_MEMBER_ID)
        log.info("group %s: generation %d with %d members, protocol %s, leader %s", display(group.group_id),
                 group.generation_id, len(group.members), group.protocol_name, group.leader_id)
        now = time.monotonic()
        for member in group.members.values():
            member.last_seen = now
            self._joins.answer(group.group_id, member.member_id, join_result(group, member.member_id))
        if group.state is GroupState.EMPTY:
            group.empty_since_ms = int(time.time() * 1000)  # kept by the record: cleaner.py
            asyncio.ensure_future(self._persist(group))

    def cancel(self, group_ids: Iterable[str]) -> None:
        for group_id in group_ids:
            task = self._deadlines.pop(group_id, None)
            if task is not None:
                task.cancel()

    def cancel_all(self) -> None:
        self.cancel(list(self._deadlines))


def join_result(group: Group, member_id: str) -> JoinResult:
    """The JoinGroup answer of the group's current generation for ``member_id`` (the leader gets the
    members and their metadata for the chosen protocol)."""
    members = []
    if member_id == group.leader_id:
        members = [(m.member_id, m.group_instance_id, m.metadata_for(group.protocol_name))
                   for m in group.members.values()]
    return JoinResult(ErrorCode.NONE, group.generation_id, group.protocol_type, group.protocol_name,
                      group.leader_id or "", member_id, members)
