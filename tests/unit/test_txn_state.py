"""txn/state.py, txn/records.py, txn/index.py: the transaction table, its records and what the
index answers a read_committed Fetch (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kop.protocol.errors import ErrorCode
from kop.txn import state as s
from kop.txn.index import TransactionIndex
from kop.txn.records import AbortedRange, RecordError, aborted_key, decode, encode_aborted, encode_txn, txn_key
from kop.txn.state import Txn, TxnState

P0, P1 = ("public/default", "t", 0), ("public/default", "t", 1)


def _txn() -> Txn:
    return Txn("public/default/app", 7, 0, 60_000)


def test_a_transaction_commits_through_prepare_and_is_retried_safely():
    txn = _txn()
    s.add_partitions(txn, {P0: 10}, 1000)
    assert txn.state is TxnState.ONGOING and txn.number == 1 and txn.started_ms == 1000
    s.add_partitions(txn, {P0: 99, P1: 5}, 1001)
    assert txn.partitions == {P0: 10, P1: 5}, "a partition keeps its first bound"
    assert s.end(txn, True, 1002) == (ErrorCode.NONE, True) and txn.state is TxnState.PREPARE_COMMIT
    assert s.end(txn, True, 1003) == (ErrorCode.CONCURRENT_TRANSACTIONS, False)
    assert s.end(txn, False, 1003) == (ErrorCode.INVALID_TXN_STATE, False)
    assert s.can_add(txn) == ErrorCode.CONCURRENT_TRANSACTIONS
    s.complete(txn, 1004)
    assert txn.state is TxnState.COMPLETE_COMMIT and txn.outcome_of(1) is True
    assert s.end(txn, True, 1005) == (ErrorCode.NONE, False), "a retried commit succeeds again"
    assert s.end(txn, False, 1005) == (ErrorCode.INVALID_TXN_STATE, False)
    s.add_group(txn, "public/default/g", 1006)
    assert txn.state is TxnState.ONGOING and txn.number == 2 and txn.partitions == {}


def test_end_without_a_transaction_and_illegal_moves():
    txn = _txn()
    assert s.end(txn, True, 1) == (ErrorCode.INVALID_TXN_STATE, False)
    with pytest.raises(s.IllegalTransition):
        txn.move(TxnState.COMPLETE_COMMIT, 1)
    s.add_partitions(txn, {P0: 0}, 1)
    with pytest.raises(s.IllegalTransition):
        s.reinit(txn, 8, 1000, 2)


def test_producers_are_checked_and_a_new_init_fences_the_old_id():
    txn = _txn()
    assert s.check_producer(txn, 7, 0) == ErrorCode.NONE
    assert s.check_producer(txn, 7, 1) == ErrorCode.PRODUCER_FENCED
    assert s.check_producer(txn, 99, 0) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    s.add_partitions(txn, {P0: 0}, 1)
    assert s.abort_for_coordinator(txn, 2, timed_out=False)
    s.complete(txn, 3)
    s.reinit(txn, 8, 30_000, 4)
    assert (txn.producer_id, txn.producer_epoch, txn.timeout_ms, txn.state) == (8, 0, 30_000, TxnState.EMPTY)
    assert s.check_producer(txn, 7, 0) == ErrorCode.PRODUCER_FENCED
    assert txn.outcome_of(1) is False and txn.number == 1, "the history outlives the producer id"


def test_a_timed_out_transaction_is_aborted_and_its_producer_fenced():
    txn = _txn()
    s.add_partitions(txn, {P0: 0}, 1000)
    assert not s.expired(txn, 61_000) and s.expired(txn, 61_001)
    assert s.abort_for_coordinator(txn, 61_001, timed_out=True)
    assert txn.state is TxnState.PREPARE_ABORT and txn.producer_epoch == 1
    assert s.check_producer(txn, 7, 0) == ErrorCode.PRODUCER_FENCED
    assert not s.abort_for_coordinator(txn, 61_002, timed_out=True), "only an Ongoing transaction"


def test_records_round_trip_and_bad_ones_are_refused():
    txn = _txn()
    s.add_partitions(txn, {P0: 10, ("t1/ns", "x\"y", 3): 4}, 5)
    s.add_group(txn, "public/default/g", 6)
    txn.markers = {P0: 20}
    kind, (tid, back) = decode(txn_key(txn.transactional_id), encode_txn(txn))
    assert kind == "txn" and tid == txn.transactional_id and back == txn
    assert decode(txn_key("x"), None) == ("txn", ("x", None))
    assert decode(aborted_key(P1, 7, 3), encode_aborted(9, 1)) == ("aborted", (P1, 7, 3, 9))
    for key, value in (('["nope"]', b"{}"), (txn_key("x"), b'{"v":2}'), (txn_key("x"), b"{"), ("[", None)):
        with pytest.raises(RecordError):
            decode(key, value)


def _ended(txn: Txn, commit: bool, markers: dict) -> Txn:
    s.end(txn, commit, 10)
    txn.markers = dict(markers)
    s.complete(txn, 11)
    return txn


def test_the_index_holds_the_lso_at_open_transactions_and_lists_aborted_ranges():
    index = TransactionIndex()
    a, b = Txn("ns/a", 7, 0, 60_000), Txn("ns/b", 8, 0, 60_000)
    s.add_partitions(a, {P0: 10}, 1)
    index.apply_txn(a.transactional_id, a)
    s.add_partitions(b, {P0: 15, P1: 0}, 1)
    index.apply_txn(b.transactional_id, b)
    assert index.last_stable_offset(P0, 100) == 10 and index.last_stable_offset(P1, 100) == 0
    assert index.last_stable_offset(("x", "y", 0), 100) == 100
    index.apply_txn(a.transactional_id, _ended(a, False, {P0: 30}))
    assert index.last_stable_offset(P0, 100) == 15
    assert index.aborted_between(P0, 0, 100) == [(7, 10)]
    assert index.aborted_between(P0, 31, 100) == [] and index.aborted_between(P0, 0, 10) == []
    assert index.explains(P0, 7, 12) and not index.explains(P0, 7, 31)
    index.apply_txn(b.transactional_id, _ended(b, True, {P0: 40, P1: 2}))
    assert index.last_stable_offset(P0, 100) == 100 and index.open == {}
    assert index.explains(P1, 8, 1) and not index.explains(P1, 8, 3)
    assert index.aborted_between(P1, 0, 100) == []


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=30))
def test_lso_is_the_lowest_open_bound_whatever_the_order(events):
    """Transactions of four producers begin and end in any order: the LSO is always the lowest start
    bound of the open ones, recomputed from scratch."""
    index, txns, offset = TransactionIndex(), {}, 0
    for pid, end in events:
        offset += 1
        txn = txns.setdefault(pid, Txn(f"ns/{pid}", pid, 0, 60_000))
        if txn.state is TxnState.ONGOING and end:
            _ended(txn, pid % 2 == 0, {P0: offset})
        elif txn.state is not TxnState.ONGOING:
            s.add_partitions(txn, {P0: offset}, offset)
        index.apply_txn(txn.transactional_id, txn)
        expected = min([t.partitions[P0] for t in txns.values() if t.state.open], default=1000)
        assert index.last_stable_offset(P0, 1000) == expected


def test_aborted_ranges_are_kept_sorted_and_once():
    index = TransactionIndex()
    for first in (30, 10, 20, 10):
        index.add_aborted(AbortedRange(P0, 7, first, first + 5))
    assert [r.first_offset for r in index.aborted[P0]] == [10, 20, 30]
    index.remove_aborted(P0, 7, 20)
    assert [r.first_offset for r in index.aborted[P0]] == [10, 30]
