"""The group state machine driven through the coordinator (kop/groups/coordinator.py, state.py):
Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and back, by joins, leaves, session
expiry and rebalance timeouts. In memory, with millisecond timeouts."""

from __future__ import annotations

import asyncio
import dataclasses

from fakes import CONFIG, eventually, join, pending, settle, started_coordinator, sync

from kop.groups.state import GroupState
from kop.protocol.errors import ErrorCode

EMPTY, PREPARING, COMPLETING, STABLE, DEAD = (GroupState.EMPTY, GroupState.PREPARING_REBALANCE,
                                              GroupState.COMPLETING_REBALANCE, GroupState.STABLE, GroupState.DEAD)


def state(coordinator, group_id: str) -> str:
    return coordinator.describe(group_id).state


async def stable_group(coordinator, group_id: str, count: int, **join_args) -> list[str]:
    """``count`` members joined together and synced: the group is Stable; returns their member ids,
    the leader's first."""
    first = await settle(join(coordinator, group_id, **join_args))
    members = [first.member_id]
    for _ in range(count - 1):
        newcomer = join(coordinator, group_id, **join_args)
        await eventually(lambda: state(coordinator, group_id) == "PreparingRebalance")
        rejoins = [join(coordinator, group_id, m, **join_args) for m in members]
        results = [await settle(t) for t in [newcomer, *rejoins]]
        members.append(results[0].member_id)
    leader = next(r for r in results if r.members) if count > 1 else first
    assignments = {m: f"assignment of {m}".encode() for m in members}
    syncs = [sync(coordinator, group_id, m, leader.generation_id, assignments if m == leader.member_id else None)
             for m in members]
    assert [(await settle(s)).error for s in syncs] == [ErrorCode.NONE] * count
    assert state(coordinator, group_id) == "Stable"
    return [leader.member_id] + [m for m in members if m != leader.member_id]


async def test_first_member_empty_to_stable(coordinator, store, transitions):
    assert state(coordinator, "g") == "Dead"  # nobody knows it yet
    result = await settle(join(coordinator, "g"))
    assert result.error == ErrorCode.NONE
    assert result.generation_id == 1 and result.leader_id == result.member_id
    assert result.protocol_type == "consumer" and result.protocol_name == "range"
    assert result.members == [(result.member_id, None, b"meta")]  # the leader gets everyone's metadata
    described = coordinator.describe("g")
    assert (described.state, described.protocol_data) == ("CompletingRebalance", "range")
    assert [(m.member_id, m.metadata, m.assignment) for m in described.members] == [(result.member_id, b"meta", b"")]

    answer = await settle(sync(coordinator, "g", result.member_id, 1, {result.member_id: b"A"}))
    assert (answer.error, answer.assignment, answer.protocol_type, answer.protocol_name) == \
        (ErrorCode.NONE, b"A", "consumer", "range")
    described = coordinator.describe("g")
    assert described.state == "Stable" and described.members[0].assignment == b"A"
    record = store.stored(store.partition_of("g")).groups["g"]  # the assignment is stored before it is answered
    assert record.generation_id == 1 and record.members[0].assignment == b"A"
    assert coordinator.rebalances_completed == 1
    assert transitions == [(EMPTY, PREPARING), (PREPARING, COMPLETING), (COMPLETING, STABLE)]


async def test_a_new_member_rebalances_everyone(coordinator, transitions):
    a = await settle(join(coordinator, "g"))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"all"}))
    b_join = join(coordinator, "g")
    await eventually(lambda: state(coordinator, "g") == "PreparingRebalance")  # Stable -> Preparing
    assert await pending(b_join)  # waits for the known member to rejoin
    assert coordinator.heartbeat("g", a.member_id, None, 1) == ErrorCode.REBALANCE_IN_PROGRESS
    a2, b = await settle(join(coordinator, "g", a.member_id)), await settle(b_join)
    assert a2.generation_id == b.generation_id == 2
    assert a2.leader_id == b.leader_id == a.member_id
    assert {m[0] for m in a2.members} == {a.member_id, b.member_id} and b.members == []
    assert state(coordinator, "g") == "CompletingRebalance"

    follower = sync(coordinator, "g", b.member_id, 2)
    assert await pending(follower)  # a follower waits for the leader's assignment
    leader = await settle(sync(coordinator, "g", a.member_id, 2, {a.member_id: b"0", b.member_id: b"1"}))
    assert (leader.error, leader.assignment) == (ErrorCode.NONE, b"0")
    assert ((await settle(follower)).error, (await settle(follower)).assignment) == (ErrorCode.NONE, b"1")
    assert state(coordinator, "g") == "Stable"
    assert transitions[3:] == [(STABLE, PREPARING), (PREPARING, COMPLETING), (COMPLETING, STABLE)]
    assert coordinator.heartbeat("g", b.member_id, None, 2) == ErrorCode.NONE
    # A Stable member syncing again gets its assignment at once.
    assert (await settle(sync(coordinator, "g", b.member_id, 2))).assignment == b"1"


async def test_initial_rebalance_delay_gathers_members_starting_together(store, cursor_sync):
    config = dataclasses.replace(CONFIG, initial_rebalance_delay_ms=300)
    coordinator = await started_coordinator(store, cursor_sync, config)
    try:
        first = join(coordinator, "g")
        assert await pending(first, 0.05)  # Empty -> Preparing waits the initial delay ...
        second = join(coordinator, "g")  # ... so a member starting meanwhile lands in the same generation
        a, b = await settle(first), await settle(second)
        assert a.generation_id == b.generation_id == 1
        assert len(coordinator.describe("g").members) == 2 and coordinator.rebalances_completed == 1
    finally:
        await coordinator.close()


async def test_rejoin_with_new_protocols_rebalances(coordinator):
    leader, follower = await stable_group(coordinator, "g", 2)
    rejoin = join(coordinator, "g", follower, protocols=[("roundrobin", b"x"), ("range", b"y")])
    await eventually(lambda: state(coordinator, "g") == "PreparingRebalance")
    other = await settle(join(coordinator, "g", leader))
    assert (await settle(rejoin)).generation_id == other.generation_id == 3


async def test_a_stable_followers_rejoin_answers_the_current_generation(coordinator):
    leader, follower = await stable_group(coordinator, "g", 2)
    again = await settle(join(coordinator, "g", follower))  # same protocols, not the leader: no rebalance
    assert (again.error, again.generation_id, again.leader_id) == (ErrorCode.NONE, 2, leader)
    assert state(coordinator, "g") == "Stable"


async def test_leave_rebalances_the_others_and_the_last_empties_the_group(coordinator, store, transitions):
    leader, follower = await stable_group(coordinator, "g", 2)
    error, results = coordinator.leave("g", [(follower, None)])
    assert (error, results) == (ErrorCode.NONE, [ErrorCode.NONE])
    assert state(coordinator, "g") == "PreparingRebalance"  # Stable -> Preparing
    alone = await settle(join(coordinator, "g", leader))
    assert alone.generation_id == 3 and [m[0] for m in alone.members] == [leader]
    assert coordinator.heartbeat("g", follower, None, 3) == ErrorCode.UNKNOWN_MEMBER_ID
    await settle(sync(coordinator, "g", leader, 3, {leader: b"all"}))

    assert coordinator.leave("g", [(leader, None)]) == (ErrorCode.NONE, [ErrorCode.NONE])
    described = coordinator.describe("g")  # Stable -> Preparing -> Empty at once: nobody is left to wait for
    assert (described.state, described.members, described.protocol_type) == ("Empty", [], "")
    assert transitions[-2:] == [(STABLE, PREPARING), (PREPARING, EMPTY)]
    await eventually(lambda: store.stored(store.partition_of("g")).groups["g"].generation_id == 4)  # in the background
    group = store.stored(store.partition_of("g")).groups["g"]
    assert group.generation_id == 4 and group.members == () and group.state_timestamp > 0
    assert coordinator.leave("g", [(leader, None)]) == (ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID])


async def test_leave_during_completing_answers_the_waiting_syncs(coordinator):
    a = await settle(join(coordinator, "g"))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    b_join = join(coordinator, "g")
    a2 = await settle(join(coordinator, "g", a.member_id))
    b = await settle(b_join)
    waiting = sync(coordinator, "g", b.member_id, b.generation_id)
    assert await pending(waiting)
    coordinator.leave("g", [(a2.member_id, None)])  # the leader leaves before assigning: Completing -> Preparing
    assert (await settle(waiting)).error == ErrorCode.REBALANCE_IN_PROGRESS
    assert (await settle(join(coordinator, "g", b.member_id))).leader_id == b.member_id


async def test_a_join_during_completing_rebalances_again(coordinator, transitions):
    a = await settle(join(coordinator, "g"))
    follower_sync = None
    b_join = join(coordinator, "g")
    await eventually(lambda: state(coordinator, "g") == "PreparingRebalance")
    await settle(join(coordinator, "g", a.member_id))
    b = await settle(b_join)
    assert state(coordinator, "g") == "CompletingRebalance"
    follower_sync = sync(coordinator, "g", b.member_id, b.generation_id)
    assert await pending(follower_sync)
    c_join = join(coordinator, "g")  # Completing -> Preparing: the waiting sync is told so
    assert (await settle(follower_sync)).error == ErrorCode.REBALANCE_IN_PROGRESS
    assert state(coordinator, "g") == "PreparingRebalance" and transitions[-1] == (COMPLETING, PREPARING)
    results = await asyncio.gather(c_join, join(coordinator, "g", a.member_id), join(coordinator, "g", b.member_id))
    assert {r.generation_id for r in results} == {b.generation_id + 1}


async def test_session_timeout_removes_a_silent_member(coordinator):
    leader, follower = await stable_group(coordinator, "g", 2, session_ms=300)
    for _ in range(30):  # the leader heartbeats; the follower says nothing
        assert coordinator.heartbeat("g", leader, None, 2) in (ErrorCode.NONE, ErrorCode.REBALANCE_IN_PROGRESS)
        await asyncio.sleep(0.03)
        if state(coordinator, "g") == "PreparingRebalance":
            break
    assert state(coordinator, "g") == "PreparingRebalance"  # Stable -> Preparing: the follower expired
    assert [m.member_id for m in coordinator.describe("g").members] == [leader]
    assert coordinator.heartbeat("g", follower, None, 2) == ErrorCode.UNKNOWN_MEMBER_ID
    assert coordinator.heartbeat("g", leader, None, 2) == ErrorCode.REBALANCE_IN_PROGRESS
    result = await settle(join(coordinator, "g", leader, session_ms=300))
    assert result.generation_id == 3 and [m[0] for m in result.members] == [leader]


async def test_session_timeout_of_the_last_member_empties_the_group(coordinator):
    (member,) = await stable_group(coordinator, "g", 1, session_ms=50)
    await eventually(lambda: state(coordinator, "g") == "Empty")
    assert coordinator.heartbeat("g", member, None, 1) == ErrorCode.UNKNOWN_MEMBER_ID


async def test_a_member_waiting_for_its_join_does_not_expire(coordinator):
    a = await settle(join(coordinator, "g", session_ms=5_000, rebalance_ms=1_000))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    newcomer = join(coordinator, "g", session_ms=50, rebalance_ms=1_000)  # waits for a to rejoin
    await asyncio.sleep(0.15)  # three of its session timeouts
    assert not newcomer.done()
    await settle(join(coordinator, "g", a.member_id, session_ms=5_000, rebalance_ms=1_000))
    assert (await settle(newcomer)).error == ErrorCode.NONE


async def test_rebalance_timeout_removes_members_that_did_not_rejoin(coordinator):
    leader, follower = await stable_group(coordinator, "g", 2, rebalance_ms=400)
    rejoin = join(coordinator, "g", leader, rebalance_ms=400)
    await eventually(lambda: state(coordinator, "g") == "PreparingRebalance")
    assert await pending(rejoin, 0.1)  # the follower is still alive (heartbeats) but does not rejoin
    assert coordinator.heartbeat("g", follower, None, 2) == ErrorCode.REBALANCE_IN_PROGRESS
    result = await settle(rejoin)  # at the rebalance timeout
    assert result.generation_id == 3 and [m[0] for m in result.members] == [leader]
    assert coordinator.heartbeat("g", follower, None, 2) == ErrorCode.UNKNOWN_MEMBER_ID
    late = await settle(join(coordinator, "g", follower))
    assert late.error == ErrorCode.UNKNOWN_MEMBER_ID


async def test_a_member_joining_twice_gets_the_first_join_superseded(coordinator):
    a = await settle(join(coordinator, "g"))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    b = join(coordinator, "g")
    await eventually(lambda: state(coordinator, "g") == "PreparingRebalance")
    (b_id,) = [m.member_id for m in coordinator.describe("g").members if m.member_id != a.member_id]
    again = join(coordinator, "g", b_id)
    assert (await settle(b)).error == ErrorCode.UNKNOWN_MEMBER_ID  # superseded by the second join
    await settle(join(coordinator, "g", a.member_id))
    assert (await settle(again)).generation_id == 2


async def test_member_id_required_first(coordinator):
    first = await settle(join(coordinator, "g", require_known=True))
    assert first.error == ErrorCode.MEMBER_ID_REQUIRED and first.member_id
    assert state(coordinator, "g") == "Empty"  # KIP-394: nothing happened to the group yet
    joined = await settle(join(coordinator, "g", first.member_id, require_known=True))
    assert (joined.error, joined.member_id, joined.generation_id) == (ErrorCode.NONE, first.member_id, 1)


async def test_deleting_an_empty_group_makes_it_dead(coordinator, store, cursor_sync, transitions):
    (member,) = await stable_group(coordinator, "g", 1)
    assert await coordinator.delete_group("g") == ErrorCode.NON_EMPTY_GROUP
    coordinator.leave("g", [(member, None)])
    assert state(coordinator, "g") == "Empty"
    assert await coordinator.delete_group("g") == ErrorCode.NONE  # Empty -> Dead, and forgotten
    assert state(coordinator, "g") == "Dead" and transitions[-1] == (EMPTY, DEAD)
    assert "g" not in store.stored(store.partition_of("g")).groups and cursor_sync.removed_groups == ["g"]
    assert await coordinator.delete_group("g") == ErrorCode.GROUP_ID_NOT_FOUND
    again = await settle(join(coordinator, "g"))  # a new group of the same name starts over
    assert again.generation_id == 1
