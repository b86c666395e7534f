"""What the group coordinator answers, and the waiters that hold a JoinGroup or SyncGroup until its
answer is known.

Every answer carries an ``error`` first, and an answer with an error is built from the error alone
(``JoinResult(code)``, ``SyncResult(code)``): so a waiter is answered in one shape wherever it is
answered (the rebalance completed, the leader's assignment arrived, the member left, expired, was
fenced by its static instance's return, or the group moved to another gateway).

The descriptions (:class:`GroupDescription`, :class:`GroupListing`) are what DescribeGroups and
ListGroups show; handlers build their responses from them and never see the coordinator's groups.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..protocol.errors import ErrorCode


@dataclass(slots=True)
class JoinResult:
    error: ErrorCode
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    member_id: str = ""
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)  # only for the leader


@dataclass(slots=True)
class SyncResult:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None  # the group's, with NONE (SyncGroup v5 answers them)
    protocol_name: str | None = None


@dataclass(slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes    # the member's metadata for the group's protocol, once one is chosen
    assignment: bytes  # once the group is Stable


@dataclass(slots=True)
class GroupDescription:
    error: ErrorCode
    state: str = ""          # Kafka's state names (state.py); "Dead" for a group nobody knows
    protocol_type: str = ""
    protocol_data: str = ""  # the chosen protocol, once chosen
    members: list[MemberDescription] = field(default_factory=list)


@dataclass(slots=True)
class GroupListing:
    group_id: str  # as the client names it (groups/scope.py)
    protocol_type: str
    state: str


R = TypeVar("R", JoinResult, SyncResult)


class Waiters(Generic[R]):
    """Requests of members waiting for their group, by group id and member id; each is answered once.

    ``failure(code)`` builds the answer that carries only an error (``JoinResult`` or ``SyncResult``).
    A member has at most one waiter: a new :meth:`wait` answers an earlier one UNKNOWN_MEMBER_ID (it
    was superseded)."""

    def __init__(self, failure: Callable[[ErrorCode], R]) -> None:
        self._failure = failure
        self._by_group: dict[str, dict[str, asyncio.Future[R]]] = {}

    def wait(self, group_id: str, member_id: str) -> asyncio.Future[R]:
        self.fail(group_id, member_id, ErrorCode.UNKNOWN_MEMBER_ID)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._by_group.setdefault(group_id, {})[member_id] = future
        return future

    def waiting(self, group_id: str, member_id: str) -> bool:
        return member_id in self._by_group.get(group_id, ())

    def answer(self, group_id: str, member_id: str, result: R) -> None:
        members = self._by_group.get(group_id)
        future = members.pop(member_id, None) if members else None
        if members is not None and not members:
            del self._by_group[group_id]
        if future is not None and not future.done():
            future.set_result(result)

    def fail(self, group_id: str, member_id: str, error: ErrorCode) -> None:
        self.answer(group_id, member_id, self._failure(error))

    def answer_all(self, group_id: str, result_of: Callable[[str], R]) -> None:
        """Answer every waiter of the group, with ``result_of(member id)``."""
        for member_id, future in self._by_group.pop(group_id, {}).items():
            if not future.done():
                future.set_result(result_of(member_id))

    def fail_all(self, group_ids: Iterable[str], error: ErrorCode) -> None:
        for group_id in group_ids:
            self.answer_all(group_id, lambda _member_id: self._failure(error))

    def __len__(self) -> int:
        return sum(len(members) for members in self._by_group.values())


def assignment_of(group, member_id: str) -> SyncResult:
    """A SyncGroup answer: the member's assignment (empty if it has none), the group's protocol."""
    member = group.members.get(member_id)
    return SyncResult(ErrorCode.NONE, member.assignment if member is not None else b"", group.protocol_type,
                      group.protocol_name)
