"""The coordinator's error answers, as Kafka's broker gives them: unknown members, old generations,
rebalances in progress, bad requests, and groups coordinated elsewhere or still loading."""

from __future__ import annotations

import asyncio

from fakes import CONFIG, FakeCursorSync, FakeStore, eventually, join, pending, settle, started_coordinator, sync

from kop.groups.coordinator import GroupCoordinator
from kop.protocol.errors import ErrorCode


async def test_unknown_member_and_illegal_generation(coordinator):
    a = await settle(join(coordinator, "g"))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    assert coordinator.heartbeat("g", "nobody", None, 1) == ErrorCode.UNKNOWN_MEMBER_ID
    assert coordinator.heartbeat("other", "nobody", None, 1) == ErrorCode.UNKNOWN_MEMBER_ID
    assert (await settle(sync(coordinator, "g", "nobody", 1))).error == ErrorCode.UNKNOWN_MEMBER_ID
    assert (await settle(join(coordinator, "g", "nobody"))).error == ErrorCode.UNKNOWN_MEMBER_ID
    assert coordinator.check_commit("g", 1, "nobody", None) == ErrorCode.UNKNOWN_MEMBER_ID
    assert coordinator.leave("g", [("nobody", None)]) == (ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID])

    assert coordinator.heartbeat("g", a.member_id, None, 0) == ErrorCode.ILLEGAL_GENERATION
    assert (await settle(sync(coordinator, "g", a.member_id, 2))).error == ErrorCode.ILLEGAL_GENERATION
    assert coordinator.check_commit("g", 7, a.member_id, None) == ErrorCode.ILLEGAL_GENERATION
    assert coordinator.heartbeat("g", a.member_id, None, 1) == ErrorCode.NONE


async def test_rebalance_in_progress(coordinator):
    a = await settle(join(coordinator, "g"))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    b_join = join(coordinator, "g")
    await eventually(lambda: coordinator.describe("g").state == "PreparingRebalance")
    assert coordinator.heartbeat("g", a.member_id, None, 1) == ErrorCode.REBALANCE_IN_PROGRESS
    assert (await settle(sync(coordinator, "g", a.member_id, 1))).error == ErrorCode.REBALANCE_IN_PROGRESS
    # Kafka accepts commits of the current generation while Preparing (the member is finishing its work) ...
    assert coordinator.check_commit("g", 1, a.member_id, None) == ErrorCode.NONE
    await settle(join(coordinator, "g", a.member_id))
    b = await settle(b_join)
    # ... and refuses them while Completing: the new assignment is not known yet
    assert coordinator.check_commit("g", 2, b.member_id, None) == ErrorCode.REBALANCE_IN_PROGRESS


async def test_bad_joins(coordinator):
    assert (await settle(join(coordinator, ""))).error == ErrorCode.INVALID_GROUP_ID
    assert (await settle(join(coordinator, "g", session_ms=1))).error == ErrorCode.INVALID_SESSION_TIMEOUT
    too_long = CONFIG.max_session_timeout_ms + 1
    assert (await settle(join(coordinator, "g", session_ms=too_long))).error == ErrorCode.INVALID_SESSION_TIMEOUT
    assert (await settle(join(coordinator, "g", protocols=[]))).error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert (await settle(join(coordinator, "g", protocol_type=""))).error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    await settle(join(coordinator, "g"))
    other_type = await settle(join(coordinator, "g", protocol_type="connect"))
    assert other_type.error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    no_common = await settle(join(coordinator, "g", protocols=[("sticky", b"")]))
    assert no_common.error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


async def test_sync_v5_checks_protocol_type_and_name(coordinator):
    a = await settle(join(coordinator, "g"))
    wrong = await settle(coordinator.sync(group_id="g", member_id=a.member_id, group_instance_id=None, generation_id=1,
                                          protocol_type="consumer", protocol_name="roundrobin", assignments={}))
    assert wrong.error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    right = await settle(coordinator.sync(group_id="g", member_id=a.member_id, group_instance_id=None, generation_id=1,
                                          protocol_type="consumer", protocol_name="range",
                                          assignments={a.member_id: b"x"}))
    assert (right.error, right.assignment) == (ErrorCode.NONE, b"x")


async def test_a_failed_assignment_write_answers_coordinator_not_available(coordinator, store):
    a = await settle(join(coordinator, "g"))
    store.fail_writes = True
    answer = await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    assert answer.error == ErrorCode.COORDINATOR_NOT_AVAILABLE
    assert coordinator.describe("g").state == "PreparingRebalance"  # the members rejoin and try again
    store.fail_writes = False
    again = await settle(join(coordinator, "g", a.member_id))
    assert again.generation_id == 2
    assert (await settle(sync(coordinator, "g", a.member_id, 2, {a.member_id: b"x"}))).error == ErrorCode.NONE


async def test_groups_of_partitions_held_elsewhere_are_not_coordinated(cursor_sync):
    store = FakeStore(partitions=2)
    store.held_elsewhere = {1}
    coordinator = GroupCoordinator(store, cursor_sync, CONFIG)
    await coordinator.start()
    try:
        assert await coordinator.custody.take(0) and not await coordinator.custody.take(1)
        mine, theirs = (next(g for g in (f"g{i}" for i in range(100)) if store.partition_of(g) == p) for p in (0, 1))
        assert coordinator.status(mine) == ErrorCode.NONE
        assert coordinator.status(theirs) == ErrorCode.NOT_COORDINATOR
        assert (await settle(join(coordinator, theirs))).error == ErrorCode.NOT_COORDINATOR
        assert (await settle(sync(coordinator, theirs, "m", 1))).error == ErrorCode.NOT_COORDINATOR
        assert coordinator.heartbeat(theirs, "m", None, 1) == ErrorCode.NOT_COORDINATOR
        assert coordinator.leave(theirs, [("m", None)]) == (ErrorCode.NOT_COORDINATOR, [ErrorCode.NOT_COORDINATOR])
        assert coordinator.check_commit(theirs, 1, "m", None) == ErrorCode.NOT_COORDINATOR
        assert coordinator.describe(theirs).error == ErrorCode.NOT_COORDINATOR
        assert await coordinator.delete_group(theirs) == ErrorCode.NOT_COORDINATOR
        assert (await coordinator.delete_offsets(theirs, [("t", 0)], lambda m: []))[0] == ErrorCode.NOT_COORDINATOR
    finally:
        await coordinator.close()


async def test_coordinator_load_in_progress_while_a_partition_loads():
    store, sync_ = FakeStore(partitions=1), FakeCursorSync()
    store.load_gate = asyncio.Event()
    coordinator = GroupCoordinator(store, sync_, CONFIG)
    await coordinator.start()
    try:
        taking = asyncio.ensure_future(coordinator.custody.take(0))
        assert await pending(taking)
        assert coordinator.status("g") == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        assert (await settle(join(coordinator, "g"))).error == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        assert coordinator.list_groups(None)[0] == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        store.load_gate.set()
        assert await settle(taking)
        assert coordinator.status("g") == ErrorCode.NONE and coordinator.list_groups(None) == (ErrorCode.NONE, [])
    finally:
        await coordinator.close()


async def test_released_partitions_answer_waiting_members_not_coordinator(coordinator, store, cursor_sync):
    a = await settle(join(coordinator, "g"))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    b_join = join(coordinator, "g")
    await eventually(lambda: coordinator.describe("g").state == "PreparingRebalance")
    await settle(join(coordinator, "g", a.member_id))
    b = await settle(b_join)
    follower_sync = sync(coordinator, "g", b.member_id, 2)  # waits for the leader's assignment
    c_join = join(coordinator, "h")
    await settle(sync(coordinator, "h", (await settle(c_join)).member_id, 1, {}))
    d_join = join(coordinator, "h")  # waits for the member of "h" to rejoin
    assert await pending(follower_sync) and await pending(d_join)
    for group_id in ("g", "h"):  # handed over to another gateway
        await coordinator.custody.release(store.partition_of(group_id))
    assert (await settle(follower_sync)).error == ErrorCode.NOT_COORDINATOR
    assert (await settle(d_join)).error == ErrorCode.NOT_COORDINATOR
    assert coordinator.status("g") == ErrorCode.NOT_COORDINATOR and cursor_sync.flushes >= 1
    assert not store.owns(store.partition_of("g"))


async def test_every_member_waiting_gets_an_answer_when_the_coordinator_closes(store, cursor_sync):
    coordinator = await started_coordinator(store, cursor_sync)
    a = await settle(join(coordinator, "g"))
    follower_join = join(coordinator, "g")
    assert await pending(follower_join)
    await coordinator.close()
    assert (await settle(follower_join)).error == ErrorCode.NOT_COORDINATOR
    assert store.closed and not cursor_sync.running and a.error == ErrorCode.NONE
