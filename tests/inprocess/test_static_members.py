"""Static membership (KIP-345, group.instance.id) through the coordinator: a member that restarts
comes back with a new member id and its old assignment without a rebalance, and the old instance is
fenced (FENCED_INSTANCE_ID) wherever it shows up."""

from __future__ import annotations

from fakes import eventually, join, pending, settle, sync

from kop.protocol.errors import ErrorCode


async def static_pair(coordinator, a_protocols=None) -> tuple[str, str]:
    """Instances "a" (leader) and "b", Stable in generation 2 with assignments A and B."""
    a = await settle(join(coordinator, "g", instance="a", protocols=a_protocols))
    b_join = join(coordinator, "g", instance="b")
    await eventually(lambda: coordinator.describe("g").state == "PreparingRebalance")
    a = await settle(join(coordinator, "g", a.member_id, instance="a", protocols=a_protocols))
    b = await settle(b_join)
    assert a.generation_id == b.generation_id == 2 and a.leader_id == a.member_id
    follower = sync(coordinator, "g", b.member_id, 2, instance="b")
    await settle(sync(coordinator, "g", a.member_id, 2, {a.member_id: b"A", b.member_id: b"B"}, instance="a"))
    assert (await settle(follower)).assignment == b"B"
    return a.member_id, b.member_id


async def test_a_restarted_static_member_keeps_its_assignment_without_rebalance(coordinator, store, transitions):
    a, b = await static_pair(coordinator)
    rebalances, before = coordinator.rebalances_completed, len(transitions)
    back = await settle(join(coordinator, "g", instance="b"))  # a new process: no member id
    assert back.error == ErrorCode.NONE and back.member_id not in (a, b)
    assert (back.generation_id, back.leader_id, back.members) == (2, a, [])
    assert coordinator.describe("g").state == "Stable" and coordinator.rebalances_completed == rebalances
    assert len(transitions) == before  # no state change at all
    answer = await settle(sync(coordinator, "g", back.member_id, 2, instance="b"))
    assert (answer.error, answer.assignment) == (ErrorCode.NONE, b"B")
    assert coordinator.heartbeat("g", back.member_id, "b", 2) == ErrorCode.NONE
    assert coordinator.heartbeat("g", a, "a", 2) == ErrorCode.NONE  # the others are not disturbed
    await eventually(lambda: {m.member_id for m in store.stored(store.partition_of("g")).groups["g"].members}
                     == {a, back.member_id})  # the new member id is stored


async def test_the_old_instance_is_fenced_everywhere(coordinator):
    a, b = await static_pair(coordinator)
    back = await settle(join(coordinator, "g", instance="b"))
    assert coordinator.heartbeat("g", b, "b", 2) == ErrorCode.FENCED_INSTANCE_ID
    assert (await settle(sync(coordinator, "g", b, 2, instance="b"))).error == ErrorCode.FENCED_INSTANCE_ID
    assert coordinator.check_commit("g", 2, b, "b") == ErrorCode.FENCED_INSTANCE_ID
    assert (await settle(join(coordinator, "g", b, instance="b"))).error == ErrorCode.FENCED_INSTANCE_ID
    assert coordinator.leave("g", [(b, "b")]) == (ErrorCode.NONE, [ErrorCode.FENCED_INSTANCE_ID])
    assert coordinator.check_commit("g", 2, back.member_id, "b") == ErrorCode.NONE


async def test_a_restarted_static_leader_is_not_asked_to_assign_again(coordinator):
    a, b = await static_pair(coordinator)
    back = await settle(join(coordinator, "g", instance="a"))
    # As Kafka: told the old leader id and no members, so it does not compute an assignment nobody uses.
    assert (back.error, back.leader_id, back.members, back.generation_id) == (ErrorCode.NONE, a, [], 2)
    assert (await settle(sync(coordinator, "g", back.member_id, 2, instance="a"))).assignment == b"A"


async def test_a_waiting_old_instance_is_fenced_when_the_new_one_arrives(coordinator):
    a, b = await static_pair(coordinator)
    old_join = join(coordinator, "g", b, instance="b", protocols=[("roundrobin", b"x"), ("range", b"y")])
    await eventually(lambda: coordinator.describe("g").state == "PreparingRebalance")
    assert await pending(old_join)  # waits for "a" to rejoin
    new_join = join(coordinator, "g", instance="b")
    assert (await settle(old_join)).error == ErrorCode.FENCED_INSTANCE_ID
    a_join = join(coordinator, "g", a, instance="a")
    results = [await settle(new_join), await settle(a_join)]
    assert [r.error for r in results] == [ErrorCode.NONE, ErrorCode.NONE]
    assert results[0].generation_id == results[1].generation_id == 3


async def test_a_static_member_with_a_new_protocol_rebalances(coordinator):
    both = [("range", b"r"), ("roundrobin", b"rr")]
    a, b = await static_pair(coordinator, a_protocols=both)
    # "range", the group's protocol, is still among b's: no rebalance, as Kafka
    assert (await settle(join(coordinator, "g", instance="b", protocols=both))).generation_id == 2
    assert coordinator.describe("g").state == "Stable"
    # without "range": the group's protocol would change, so the group rebalances
    other = join(coordinator, "g", instance="b", protocols=[("roundrobin", b"rr")])
    await eventually(lambda: coordinator.describe("g").state == "PreparingRebalance")
    assert await pending(other)
    await settle(join(coordinator, "g", a, instance="a", protocols=both))
    result = await settle(other)
    assert (result.error, result.generation_id, result.protocol_name) == (ErrorCode.NONE, 3, "roundrobin")
    refused = await settle(join(coordinator, "g", instance="b", protocols=[("sticky", b"s")]))
    assert refused.error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL  # nothing in common with the group


async def test_a_static_member_leaves_by_instance_id(coordinator):
    a, b = await static_pair(coordinator)
    assert coordinator.leave("g", [("", "b"), ("", "nobody")]) == \
        (ErrorCode.NONE, [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID])
    assert coordinator.describe("g").state == "PreparingRebalance"
    assert [m.member_id for m in coordinator.describe("g").members] == [a]


async def test_a_silent_static_member_expires_like_any_other(coordinator):
    a = await settle(join(coordinator, "g", instance="a", session_ms=60))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"A"}, instance="a"))
    await eventually(lambda: coordinator.describe("g").state == "Empty")
    fresh = await settle(join(coordinator, "g", instance="a"))  # unknown again: a normal join
    assert (fresh.error, fresh.generation_id) == (ErrorCode.NONE, 3)
