"""Committed offsets through the coordinator (commit, fetch, OffsetDelete, DeleteGroups), what
DescribeGroups and ListGroups see, and the custody of ``__offsets`` partitions: groups and offsets
rebuilt from the store by the next owner, a partition lost to another gateway, the offsets cleaner."""

from __future__ import annotations

import dataclasses
import time

import pytest
from fakes import CONFIG, eventually, join, settle, started_coordinator, sync

from kop.groups import scope
from kop.groups.offsets_format import CommittedOffset
from kop.groups.store import NotOwner
from kop.protocol.errors import ErrorCode


def commit_of(offset: int, age_ms: int = 0) -> CommittedOffset:
    return CommittedOffset(offset, f"meta {offset}", int(time.time() * 1000) - age_ms)


def topics_of(metadata: bytes) -> list[str]:
    """The tests' stand-in for a consumer subscription: comma-separated topic names."""
    return metadata.decode().split(",")


async def test_commit_and_fetch(coordinator, store, cursor_sync):
    assert coordinator.check_commit("g", -1, "", None) == ErrorCode.NONE  # assign() with a group id
    await coordinator.commit("g", {("t", 0): commit_of(5), ("t", 1): commit_of(7)})
    assert {k: c.offset for k, c in coordinator.committed("g").items()} == {("t", 0): 5, ("t", 1): 7}
    assert coordinator.committed("nobody") == {}
    assert cursor_sync.notes == {("g", "t", 0): 5, ("g", "t", 1): 7}  # mirrored to Pulsar subscriptions
    stored = store.stored(store.partition_of("g")).offsets
    assert {k: c.offset for k, c in stored.items()} == {("g", "t", 0): 5, ("g", "t", 1): 7}
    assert coordinator.describe("g").state == "Empty"  # a group that only commits exists, Empty
    await coordinator.commit("g", {("t", 0): commit_of(6)})
    assert coordinator.committed("g")[("t", 0)].offset == 6 and coordinator.committed("g")[("t", 0)].metadata == "meta 6"
    assert [(g, sorted(c)) for g, c in coordinator.all_committed()] == [("g", [("t", 0), ("t", 1)])]


async def test_members_commit_with_their_generation(coordinator):
    a = await settle(join(coordinator, "g"))
    assert coordinator.check_commit("g", -1, "", None) == ErrorCode.UNKNOWN_MEMBER_ID  # the group has members now
    assert coordinator.check_commit("g", 1, a.member_id, None) == ErrorCode.REBALANCE_IN_PROGRESS  # Completing
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    assert coordinator.check_commit("g", 1, a.member_id, None) == ErrorCode.NONE


async def test_a_failed_commit_changes_nothing(coordinator, store):
    store.fail_writes = True
    with pytest.raises(Exception):
        await coordinator.commit("g", {("t", 0): commit_of(1)})
    assert coordinator.committed("g") == {}


async def test_offset_delete(coordinator, store, cursor_sync):
    await coordinator.commit("g", {("t", 0): commit_of(1), ("u", 0): commit_of(2), ("v", 0): commit_of(3)})
    assert await coordinator.delete_offsets("missing", [("t", 0)], topics_of) == (ErrorCode.GROUP_ID_NOT_FOUND, {})
    a = await settle(join(coordinator, "g", protocols=[("range", b"t,w")]))  # subscribed to t and w
    error, results = await coordinator.delete_offsets("g", [("t", 0), ("u", 0)], topics_of)
    assert (error, results) == (ErrorCode.NONE, {("t", 0): ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ("u", 0): ErrorCode.NONE})
    assert sorted(coordinator.committed("g")) == [("t", 0), ("v", 0)]
    assert ("g", "u", 0) not in store.stored(store.partition_of("g")).offsets and cursor_sync.removed == [("g", "u", 0)]
    coordinator.leave("g", [(a.member_id, None)])
    assert (await coordinator.delete_offsets("g", [("t", 0)], topics_of))[1] == {("t", 0): ErrorCode.NONE}
    assert sorted(coordinator.committed("g")) == [("v", 0)]


async def test_offset_delete_of_a_non_consumer_group_with_members(coordinator):
    await coordinator.commit("g", {("t", 0): commit_of(1)})
    await settle(join(coordinator, "g", protocol_type="connect", protocols=[("default", b"\x00\x01")]))
    assert await coordinator.delete_offsets("g", [("t", 0)], topics_of) == (ErrorCode.NON_EMPTY_GROUP, {})
    assert sorted(coordinator.committed("g")) == [("t", 0)]


async def test_undecodable_subscriptions_subscribe_to_nothing(coordinator):
    await coordinator.commit("g", {("t", 0): commit_of(1)})
    await settle(join(coordinator, "g", protocols=[("range", b"\xff")]))

    def broken(metadata: bytes) -> list[str]:
        raise ValueError("not a subscription")
    assert await coordinator.delete_offsets("g", [("t", 0)], broken) == (ErrorCode.NONE, {("t", 0): ErrorCode.NONE})


async def test_delete_group_removes_its_offsets(coordinator, store, cursor_sync):
    await coordinator.commit("g", {("t", 0): commit_of(1)})
    assert await coordinator.delete_group("g") == ErrorCode.NONE
    assert coordinator.committed("g") == {} and store.stored(store.partition_of("g")).offsets == {}
    assert cursor_sync.removed_groups == ["g"]


async def test_describe_shows_metadata_once_chosen_and_assignments_once_stable(coordinator):
    a = await settle(join(coordinator, "g", protocols=[("range", b"sub")]))
    completing = coordinator.describe("g")
    assert (completing.protocol_type, completing.protocol_data) == ("consumer", "range")
    assert [(m.member_id, m.client_id, m.client_host, m.metadata, m.assignment) for m in completing.members] == \
        [(a.member_id, "client", "/127.0.0.1", b"sub", b"")]
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"assigned"}))
    assert coordinator.describe("g").members[0].assignment == b"assigned"
    b_join = join(coordinator, "g", protocols=[("range", b"sub")])
    await eventually(lambda: coordinator.describe("g").state == "PreparingRebalance")
    preparing = coordinator.describe("g")  # no protocol is chosen while the group rebalances
    assert preparing.protocol_data == "" and {m.metadata for m in preparing.members} == {b""}
    assert {m.assignment for m in preparing.members} == {b""}
    await settle(join(coordinator, "g", a.member_id, protocols=[("range", b"sub")]))
    await settle(b_join)


async def test_list_groups_by_namespace_and_state(coordinator):
    tenant_group = scope.scoped("g", "acme/apps")
    await settle(join(coordinator, "g"))
    await coordinator.commit("quiet", {("t", 0): commit_of(1)})
    await settle(join(coordinator, tenant_group))
    error, listed = coordinator.list_groups(None)
    assert error == ErrorCode.NONE
    assert sorted((g.group_id, g.state, g.protocol_type) for g in listed) == \
        [("g", "CompletingRebalance", "consumer"), ("quiet", "Empty", "")]
    assert [g.group_id for g in coordinator.list_groups(None, {"empty"})[1]] == ["quiet"]
    assert [(g.group_id, g.state) for g in coordinator.list_groups("acme/apps")[1]] == [("g", "CompletingRebalance")]
    assert coordinator.list_groups("other/ns") == (ErrorCode.NONE, [])
    census = sorted((g, s.value, n) for g, s, n in coordinator.census())
    assert census == sorted([("g", "CompletingRebalance", 1), ("quiet", "Empty", 0),
                             (tenant_group, "CompletingRebalance", 1)])


async def test_the_next_owner_rebuilds_groups_and_offsets(coordinator, store, cursor_sync):
    a = await settle(join(coordinator, "g"))
    await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"A"}))
    await coordinator.commit("g", {("t", 0): commit_of(42)})
    await coordinator.commit("old", {("t", 0): commit_of(7, age_ms=3_600_000)})
    partitions = {store.partition_of("g"), store.partition_of("old")}
    for partition in partitions:
        await coordinator.custody.release(partition)
    assert coordinator.status("g") == ErrorCode.NOT_COORDINATOR and coordinator.committed("g") == {}

    cursor_sync.notes.clear()
    for partition in partitions:
        assert await coordinator.custody.take(partition)
    described = coordinator.describe("g")  # back Stable, same member, generation and assignment: no rebalance
    assert (described.state, [(m.member_id, m.assignment) for m in described.members]) == \
        ("Stable", [(a.member_id, b"A")])
    assert coordinator.heartbeat("g", a.member_id, None, 1) == ErrorCode.NONE
    assert coordinator.committed("g")[("t", 0)].offset == 42 and coordinator.committed("old")[("t", 0)].offset == 7
    # recent commits go to the cursor sync again (the previous owner may have died before syncing them)
    assert cursor_sync.notes == {("g", "t", 0): 42}


async def test_a_partition_lost_to_another_gateway_is_let_go(coordinator, store, cursor_sync):
    await coordinator.commit("g", {("t", 0): commit_of(1)})
    partition = store.partition_of("g")
    store.lost.add(partition)  # another gateway fenced our producer
    with pytest.raises(NotOwner):
        await coordinator.commit("g", {("t", 0): commit_of(2)})
    await eventually(lambda: coordinator.status("g") == ErrorCode.NOT_COORDINATOR)
    assert "g" in cursor_sync.discarded  # the new owner syncs its cursors; ours could be stale
    assert coordinator.committed("g") == {}
    with pytest.raises(NotOwner):
        await coordinator.commit("g", {("t", 0): commit_of(3)})


async def test_a_group_write_finding_the_partition_lost_lets_it_go(coordinator, store):
    a = await settle(join(coordinator, "g"))
    store.lost.add(store.partition_of("g"))
    answer = await settle(sync(coordinator, "g", a.member_id, 1, {a.member_id: b"x"}))
    assert answer.error == ErrorCode.COORDINATOR_NOT_AVAILABLE
    await eventually(lambda: coordinator.status("g") == ErrorCode.NOT_COORDINATOR)


async def test_the_cleaner_forgets_empty_groups_and_expires_offsets(store, cursor_sync):
    config = dataclasses.replace(CONFIG, empty_group_retention_s=0.05, offsets_retention_minutes=1)
    coordinator = await started_coordinator(store, cursor_sync, config, sweep_interval_s=0.02)
    try:
        a = await settle(join(coordinator, "passing"))
        coordinator.leave("passing", [(a.member_id, None)])  # Empty, no offsets: forgotten
        await coordinator.commit("committer", {("t", 0): commit_of(1, age_ms=61_000), ("t", 1): commit_of(2)})
        await eventually(lambda: coordinator.describe("passing").state == "Dead")
        # a group that never had members: each commit expires a retention after it was made
        await eventually(lambda: sorted(coordinator.committed("committer")) == [("t", 1)])
        assert cursor_sync.removed == [("committer", "t", 0)]
        assert coordinator.describe("committer").state == "Empty"
    finally:
        await coordinator.close()


async def test_store_partitions_and_topic_are_visible_to_ownership(coordinator, store):
    custody = coordinator.custody
    assert custody.partitions == store.partitions == 4 and custody.topic is store.topic
    assert all(custody.owns(p) for p in range(4)) and custody.partition_of("g") == store.partition_of("g")
    assert store.started
