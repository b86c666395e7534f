"""The pure rules behind Kafka's retention in kop: retention.ms as a Pulsar TTL, which namespace
retention keeps data, and when a group's committed offsets expire (KIP-211)."""

from __future__ import annotations

from kop.groups.cleaner import expired_offsets
from kop.groups.offsets_format import CommittedOffset
from kop.groups.state import Group, GroupState, Member
from kop.mapping import topic_configs as tc

DAY_MS = 24 * 3600 * 1000


def test_ttl_follows_retention_ms():
    assert tc.ttl_seconds(-1) == 0  # forever: no TTL
    assert tc.ttl_seconds(0) == 1  # "delete at once": 0 would mean "never" to Pulsar
    assert tc.ttl_seconds(1500) == 2
    assert tc.ttl_seconds(7 * DAY_MS) == 604800
    assert tc.ttl_seconds(2**62) == 2**31 - 1


def test_which_retention_keeps_data():
    assert not tc.keeps_data(None) and not tc.keeps_data({})
    assert not tc.keeps_data({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0})
    assert not tc.keeps_data({"retentionTimeInMinutes": 60, "retentionSizeInMB": 0})
    assert not tc.keeps_data({"retentionTimeInMinutes": 0, "retentionSizeInMB": -1})
    assert tc.keeps_data({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1})
    assert tc.keeps_data({"retentionTimeInMinutes": 10080, "retentionSizeInMB": 1024})


def _commits(*timestamps: int) -> dict:
    return {("t", i): CommittedOffset(100 + i, None, ts) for i, ts in enumerate(timestamps)}


def test_offsets_of_a_group_that_emptied_expire_together():
    group = Group("g", empty_since_ms=10 * DAY_MS)
    commits = _commits(1 * DAY_MS, 9 * DAY_MS)
    assert expired_offsets(group, commits, 16 * DAY_MS, 7 * DAY_MS) == []
    assert expired_offsets(group, commits, 17 * DAY_MS, 7 * DAY_MS) == [("t", 0), ("t", 1)]


def test_offsets_of_a_group_that_never_had_members_expire_one_by_one():
    group = Group("g")
    commits = _commits(1 * DAY_MS, 9 * DAY_MS)
    assert expired_offsets(group, commits, 9 * DAY_MS, 7 * DAY_MS) == [("t", 0)]
    assert expired_offsets(group, commits, 16 * DAY_MS, 7 * DAY_MS) == [("t", 0), ("t", 1)]


def test_a_group_with_members_keeps_its_offsets():
    group = Group("g", empty_since_ms=1)
    group.add(Member("m", None, "c", "h", 10_000, 10_000, "consumer", [("range", b"")]))
    group.transition(GroupState.PREPARING_REBALANCE)
    assert expired_offsets(group, _commits(1), 100 * DAY_MS, 7 * DAY_MS) == []
