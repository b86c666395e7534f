"""Consumer-group state: a pure table of states and transitions, and the group's data. No I/O, no
awaiting — the coordinator (coordinator.py) does the I/O and the timing.

Kafka's classic group protocol, as the broker sees it::

            join (first member)               all known members rejoined,
    Empty ----------------------> Preparing ----------------------------> Completing
      ^                          Rebalance    (or rebalance timeout)       Rebalance
      |  last member leaves /        ^  ^                                      |
      |  expires                      |  |  a member joins, leaves, expires,    | leader's SyncGroup
      +------------------------------+  +--- or changes its protocols ---------+ (assignments stored)
                                      |                                        v
                                      +------------------------------------ Stable
    any state --(DeleteGroups on an empty group)--> Dead

Invariants:
- ``generation_id`` only grows; it grows exactly when a rebalance completes (Preparing -> Completing,
  or Preparing -> Empty when nobody rejoined).
- In Completing and Stable, ``protocol_name`` is supported by every member and ``leader_id`` is a
  member; in Empty there are no members and no leader.
- A static member (``group_instance_id``) has exactly one member id at a time: a rejoin with a new
  member id replaces the old one, and the old one is fenced (FENCED_INSTANCE_ID).
- Offsets are independent of the membership state: an Empty group may hold commits.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE, GroupState.DEAD}),
    GroupState.PREPARING_REBALANCE: frozenset({GroupState.COMPLETING_REBALANCE, GroupState.EMPTY,
                                               GroupState.DEAD}),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.STABLE, GroupState.PREPARING_REBALANCE,
                                                GroupState.DEAD}),
    GroupState.STABLE: frozenset({GroupState.PREPARING_REBALANCE, GroupState.DEAD}),
    GroupState.DEAD: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str | None
    protocols: list[tuple[str, bytes]]  # (name, metadata) in the member's order of preference
    assignment: bytes = b""
    last_seen: float = 0.0              # monotonic time of the last join/sync/heartbeat/commit
    joined_this_round: bool = False     # rejoined during the current PreparingRebalance

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def supports(self, names: set[str]) -> bool:
        return bool(names & {name for name, _ in self.protocols})


@dataclass(slots=True)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # group_instance_id -> member_id
    pending_member_ids: set[str] = field(default_factory=set)     # handed out by MEMBER_ID_REQUIRED
    rebalance_started: float = 0.0
    rebalance_delay_until: float = 0.0  # the initial rebalance delay, for a group that left Empty
    # Wall-clock ms when its last member went (its offsets expire from there, cleaner.py); 0 for a
    # group that never had members (its offsets expire one by one, from their commits).
    empty_since_ms: int = 0

    def transition(self, target: GroupState) -> None:
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"group {self.group_id!r}: {self.state.value} -> {target.value}")
        self.state = target

    # -- membership -------------------------------------------------------------------------------

    def add(self, member: Member) -> None:
        self.members[member.member_id] = member
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        self.pending_member_ids.discard(member.member_id)
        if self.protocol_type is None:
            self.protocol_type = member.protocol_type

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is not None and member.group_instance_id is not None:
            if self.static_members.get(member.group_instance_id) == member_id:
                del self.static_members[member.group_instance_id]
        if member_id == self.leader_id:
            self.leader_id = next(iter(self.members), None)
        if not self.members:
            self.protocol_type = None if self.state is not GroupState.STABLE else self.protocol_type
        return member

    def replace_static(self, instance_id: str, new_member_id: str) -> Member:
        """A static member came back with a new member id: it keeps its place and assignment."""
        old_id = self.static_members[instance_id]
        member = self.members.pop(old_id)
        member.member_id = new_member_id
        self.members[new_member_id] = member
        self.static_members[instance_id] = new_member_id
        if self.leader_id == old_id:
            self.leader_id = new_member_id
        return member

    # -- protocol choice ---------------------------------------------------------------------------

    def fenced(self, member_id: str, group_instance_id: str | None) -> bool:
        """A known static instance presented with a member id that is not its current one."""
        if group_instance_id is None or group_instance_id not in self.static_members:
            return False
        return self.static_members[group_instance_id] != member_id

    def subscribed_topics(self, topics_of) -> set[str]:
        """The topics a ``consumer`` group's members subscribe to (``topics_of`` reads a member's
        subscription); nothing for another protocol type, or a subscription that cannot be read."""
        topics: set[str] = set()
        if self.protocol_type != "consumer":
            return topics
        for member in self.members.values():
            try:
                topics.update(topics_of(member.metadata_for(self.protocol_name)))
            except Exception:  # undecodable metadata: subscribed to nothing we can tell
                continue
        return topics

    def accepts(self, protocol_type: str | None, protocols: list[tuple[str, bytes]]) -> bool:
        """Can a member with these protocols join? (else INCONSISTENT_GROUP_PROTOCOL)"""
        if not protocols:
            return False
        if not self.members:
            return True
        if protocol_type != self.protocol_type:
            return False
        return bool(self.candidate_protocols() & {name for name, _ in protocols})

    def candidate_protocols(self) -> set[str]:
        """Protocols every current member supports."""
        sets = [{name for name, _ in m.protocols} for m in self.members.values()]
        return set.intersection(*sets) if sets else set()

    def select_protocol(self) -> str | None:
        """Each member votes for its most preferred protocol that all members support; the most
        votes win, ties going to the protocol preferred by the earliest member (Kafka's rule)."""
        candidates = self.candidate_protocols()
        if not candidates:
            return None
        votes: Counter[str] = Counter()
        first_seen: dict[str, int] = {}
        for index, member in enumerate(self.members.values()):
            for name, _ in member.protocols:
                if name in candidates:
                    votes[name] += 1
                    first_seen.setdefault(name, index)
                    break
        return max(votes, key=lambda name: (votes[name], -first_seen[name]))

    def all_rejoined(self) -> bool:
        return all(m.joined_this_round for m in self.members.values())

    def complete_rebalance(self) -> None:
        """Preparing -> Completing (or Empty): new generation, protocol and leader."""
        for member_id in [m.member_id for m in self.members.values() if not m.joined_this_round]:
            self.remove(member_id)
        self.generation_id += 1
        for member in self.members.values():
            member.joined_this_round = False
            member.assignment = b""
        if not self.members:
            self.protocol_name = None
            self.leader_id = None
            self.protocol_type = None
            self.transition(GroupState.EMPTY)
            return
        self.protocol_name = self.select_protocol()
        if self.leader_id not in self.members:
            self.leader_id = next(iter(self.members))
        self.transition(GroupState.COMPLETING_REBALANCE)

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)
