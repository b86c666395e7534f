"""The pure group state table (kop/groups/state.py): transitions, protocol votes, rebalance
completion and static members."""

from __future__ import annotations

import pytest

from kop.groups.state import TRANSITIONS, Group, GroupState, IllegalTransition, Member


def member(member_id: str, protocols=(("range", b"r"), ("roundrobin", b"rr")), instance: str | None = None) -> Member:
    return Member(member_id, instance, "client", "/127.0.0.1", 10_000, 30_000, "consumer", list(protocols))


def test_transition_table_matches_kafka():
    S = GroupState
    assert TRANSITIONS[S.EMPTY] == {S.PREPARING_REBALANCE, S.DEAD}
    assert TRANSITIONS[S.PREPARING_REBALANCE] == {S.COMPLETING_REBALANCE, S.EMPTY, S.DEAD}
    assert TRANSITIONS[S.COMPLETING_REBALANCE] == {S.STABLE, S.PREPARING_REBALANCE, S.DEAD}
    assert TRANSITIONS[S.STABLE] == {S.PREPARING_REBALANCE, S.DEAD}
    assert TRANSITIONS[S.DEAD] == set()


@pytest.mark.parametrize("source", list(GroupState))
def test_illegal_transitions_raise(source):
    for target in GroupState:
        group = Group("g", state=source)
        if target in TRANSITIONS[source]:
            group.transition(target)
            assert group.state is target
        else:
            with pytest.raises(IllegalTransition):
                group.transition(target)


def test_protocol_vote_and_tie_break():
    group = Group("g")
    group.add(member("a", [("roundrobin", b""), ("range", b"")]))
    group.add(member("b", [("range", b""), ("roundrobin", b"")]))
    group.add(member("c", [("range", b""), ("roundrobin", b"")]))
    assert group.select_protocol() == "range"  # two votes against one
    tie = Group("t")
    tie.add(member("a", [("roundrobin", b""), ("range", b"")]))
    tie.add(member("b", [("range", b""), ("roundrobin", b"")]))
    assert tie.select_protocol() == "roundrobin"  # one vote each: the earliest member's choice


def test_accepts_only_compatible_members():
    group = Group("g")
    group.add(member("a", [("range", b"")]))
    assert group.accepts("consumer", [("range", b""), ("sticky", b"")])
    assert not group.accepts("consumer", [("sticky", b"")])
    assert not group.accepts("connect", [("range", b"")])
    assert not Group("empty").accepts("consumer", [])


def test_rebalance_completion_drops_members_that_did_not_rejoin():
    group = Group("g", state=GroupState.PREPARING_REBALANCE, generation_id=4)
    for name in ("a", "b", "c"):
        group.add(member(name))
    group.leader_id = "b"
    group.members["a"].joined_this_round = True
    group.members["c"].joined_this_round = True
    assert not group.all_rejoined()
    group.complete_rebalance()
    assert group.state is GroupState.COMPLETING_REBALANCE
    assert group.generation_id == 5 and set(group.members) == {"a", "c"}
    assert group.leader_id in group.members and group.protocol_name == "range"
    assert not any(m.joined_this_round for m in group.members.values())


def test_rebalance_with_nobody_left_goes_empty_and_still_bumps_the_generation():
    group = Group("g", state=GroupState.PREPARING_REBALANCE, generation_id=2)
    group.add(member("a"))
    group.complete_rebalance()
    assert group.state is GroupState.EMPTY and group.generation_id == 3
    assert not group.members and group.leader_id is None and group.protocol_name is None


def test_static_member_keeps_its_place_under_a_new_member_id():
    group = Group("g", state=GroupState.STABLE, generation_id=1)
    group.add(member("old", instance="i-1"))
    group.members["old"].assignment = b"assigned"
    group.leader_id = "old"
    replaced = group.replace_static("i-1", "new")
    assert replaced.assignment == b"assigned" and set(group.members) == {"new"}
    assert group.static_members == {"i-1": "new"} and group.leader_id == "new"
    group.remove("new")
    assert group.static_members == {} and not group.members
