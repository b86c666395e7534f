"""Kafka's offsets cleaner for the groups this gateway coordinates: expired commits and forgotten groups.

Run by the coordinator (a background loop, kop/tasks.py) every ``SWEEP_S`` seconds (Kafka: offsets.retention.check.interval.ms, 10
minutes). Two rules, as Kafka's (KIP-211):

- **Offsets expire** ``groups.offsets_retention_minutes`` (Kafka's offsets.retention.minutes, 7
  days) after the group became Empty -- all of them at once. A group that never had members (a
  consumer that only commits, ``assign()`` with a group id) has no such moment: each of its offsets
  expires that long after its own commit. A group with members keeps its offsets. Expired offsets
  are deleted from ``__offsets`` *and their Pulsar subscriptions are deleted* (cursor_sync.py), so
  an abandoned group stops holding its backlog in Pulsar; once a group has no offsets left it is
  deleted altogether.
- **Empty groups without offsets are forgotten** ``groups.empty_group_retention_s`` after they
  were first seen so, as Kafka drops such groups; otherwise every group id a client ever named would
  stay in memory.

When a group became Empty is kept in its ``__offsets`` metadata record (its timestamp: the record
is written when the group becomes Empty), so a restart or a move to another gateway does not
restart the clock.
"""

from __future__ import annotations

import logging
import time

from ..protocol.errors import ErrorCode
from .offsets_format import CommittedOffset
from .scope import display
from .state import Group, GroupState

log = logging.getLogger(__name__)

SWEEP_S = 10.0


def expired_offsets(group: Group, commits: dict[tuple[str, int], CommittedOffset], now_ms: int,
                    retention_ms: float) -> list[tuple[str, int]]:
    """The (topic, partition) keys of ``group``'s commits that have expired at ``now_ms`` (pure)."""
    if group.state is not GroupState.EMPTY or group.members:
        return []
    if group.empty_since_ms > 0:  # it had members: everything goes together, from when it emptied
        return list(commits) if now_ms - group.empty_since_ms >= retention_ms else []
    return [key for key, commit in commits.items() if now_ms - commit.commit_timestamp >= retention_ms]


class GroupCleaner:
    """The two rules above, over the groups and offsets of the coordinator's custody (custody.py);
    ``groups_config``: the retentions (config.GroupsConfig)."""

    def __init__(self, custody, groups_config) -> None:
        self._custody = custody
        self.offsets_retention_minutes = groups_config.offsets_retention_minutes
        self.empty_group_retention_s = groups_config.empty_group_retention_s
        self._empty_since: dict[str, float] = {}  # empty groups without offsets, first seen so (monotonic)

    async def sweep(self) -> None:
        await self.expire_offsets(int(time.time() * 1000))
        await self.forget_empty_groups(time.monotonic())

    async def expire_offsets(self, now_ms: int) -> int:
        """Delete expired commits (and their subscriptions); returns how many went."""
        c = self._custody
        retention_ms = self.offsets_retention_minutes * 60_000
        removed = 0
        for group_id, commits in list(c.offsets.items()):
            group = c.groups.get(group_id)
            if group is None or not commits or c.status(group_id) != ErrorCode.NONE:
                continue
            keys = expired_offsets(group, commits, now_ms, retention_ms)
            if not keys:
                continue
            try:
                if len(keys) == len(commits):
                    error = await c.delete_group(group_id)
                    if error != ErrorCode.NONE:
                        continue
                    why = (f"Empty for {(now_ms - group.empty_since_ms) / 60_000:.1f} min" if group.empty_since_ms
                           else "its commits are older than that")
                    log.info("group %s: offsets expired (%s; offsets retention %.1f min): group and its "
                             "%d Pulsar subscriptions deleted", display(group_id), why,
                             self.offsets_retention_minutes, len(keys))
                else:
                    await c.delete_offsets(group_id, keys)
                    log.info("group %s: %d committed offsets expired (offsets retention %.1f min); their "
                             "Pulsar subscriptions deleted", display(group_id), len(keys),
                             self.offsets_retention_minutes)
            except Exception as exc:  # __offsets unwritable now: the next sweep tries again
                log.warning("group %s: expired offsets not deleted yet: %s", display(group_id), exc)
                continue
            removed += len(keys)
        return removed

    async def forget_empty_groups(self, now: float) -> None:
        c = self._custody
        for group_id, group in list(c.groups.items()):
            idle = (group.state is GroupState.EMPTY and not group.members and not group.static_members
                    and not c.offsets.get(group_id))
            if not idle:
                self._empty_since.pop(group_id, None)
                continue
            since = self._empty_since.setdefault(group_id, now)
            if now - since < self.empty_group_retention_s:
                continue
            self._empty_since.pop(group_id, None)
            try:
                error = await c.delete_group(group_id)
            except Exception as exc:  # __offsets unwritable now: the next sweep tries again
                log.warning("group %s: empty, but not forgotten yet: %s", display(group_id), exc)
                continue
            if error == ErrorCode.NONE:
                log.info("group %s: empty with no committed offsets for %.0f s; forgotten", display(group_id),
                         now - since)
