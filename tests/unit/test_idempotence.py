"""kop.backend.idempotence: the per-partition table of idempotent producers' recent batches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kop.backend.idempotence import BATCHES_REMEMBERED, ProducerTable, Verdict, last_sequence

PID = 1000
SEQ_MAX = 2**31 - 1


def append(table: ProducerTable, pid: int, epoch: int, first: int, count: int, result):
    """Check a batch, insist it is an APPEND, and register it (as produce does)."""
    last = last_sequence(first, count)
    verdict, _ = table.check(pid, epoch, first, last)
    assert verdict is Verdict.APPEND, (pid, epoch, first, last, verdict)
    table.register(pid, epoch, first, last, result)
    return last


def test_batches_remembered_is_five():
    assert BATCHES_REMEMBERED == 5


@pytest.mark.parametrize("first, count, expected", [
    (0, 1, 0), (0, 10, 9), (5, 3, 7), (SEQ_MAX, 1, SEQ_MAX), (SEQ_MAX, 2, 0), (SEQ_MAX - 1, 5, 2),
])
def test_last_sequence(first, count, expected):
    assert last_sequence(first, count) == expected


def test_empty_table():
    table = ProducerTable()
    assert len(table) == 0


@pytest.mark.parametrize("first_seq", [0, 7, 12345, SEQ_MAX])
def test_first_batch_of_unknown_producer_appends(first_seq):
    table = ProducerTable()
    verdict, result = table.check(PID, 0, first_seq, last_sequence(first_seq, 3))
    assert verdict is Verdict.APPEND and result is None
    table.register(PID, 0, first_seq, last_sequence(first_seq, 3), 111)
    assert len(table) == 1


def test_next_sequence_appends():
    table = ProducerTable()
    last = append(table, PID, 0, 0, 10, 100)
    assert last == 9
    last = append(table, PID, 0, 10, 1, 200)
    last = append(table, PID, 0, 11, 5, 300)
    assert last == 15


def test_duplicate_of_each_of_the_last_five_batches():
    table = ProducerTable()
    batches = []
    seq = 0
    for i in range(7):
        last = append(table, PID, 3, seq, 4, f"offset-{i}")
        batches.append((seq, last, f"offset-{i}"))
        seq = last + 1
    for first, last, result in batches[-5:]:
        assert table.check(PID, 3, first, last) == (Verdict.DUPLICATE, result)
    # a duplicate does not change what comes next
    assert table.check(PID, 3, seq, seq + 3)[0] is Verdict.APPEND


def test_duplicate_older_than_five_batches_is_out_of_order():
    table = ProducerTable()
    batches = []
    seq = 0
    for i in range(6):
        last = append(table, PID, 0, seq, 2, i)
        batches.append((seq, last))
        seq = last + 1
    first, last = batches[0]  # the sixth batch pushed it out
    assert table.check(PID, 0, first, last) == (Verdict.OUT_OF_ORDER, None)
    first, last = batches[1]
    assert table.check(PID, 0, first, last)[0] is Verdict.DUPLICATE


def test_partial_overlap_is_not_a_duplicate():
    table = ProducerTable()
    append(table, PID, 0, 0, 10, "a")
    assert table.check(PID, 0, 0, 5)[0] is Verdict.OUT_OF_ORDER   # same start, other end
    assert table.check(PID, 0, 5, 9)[0] is Verdict.OUT_OF_ORDER   # same end, other start


@pytest.mark.parametrize("first_seq", [11, 12, 100, 9, 0, 5, SEQ_MAX])
def test_gap_or_going_back_is_out_of_order(first_seq):
    table = ProducerTable()
    append(table, PID, 0, 0, 10, "a")  # 0..9; the next must start at 10
    if first_seq == 0:
        last = 3  # not the remembered (0, 9)
    else:
        last = last_sequence(first_seq, 2)
    assert table.check(PID, 0, first_seq, last) == (Verdict.OUT_OF_ORDER, None)


def test_older_epoch_is_fenced():
    table = ProducerTable()
    append(table, PID, 5, 0, 3, "a")
    assert table.check(PID, 4, 3, 5) == (Verdict.FENCED, None)
    assert table.check(PID, 0, 0, 2) == (Verdict.FENCED, None)  # even a "duplicate" from a zombie


def test_newer_epoch_appends_and_resets():
    table = ProducerTable()
    append(table, PID, 1, 0, 5, "old")  # 0..4
    append(table, PID, 1, 5, 5, "old2")  # 5..9
    # a bumped epoch starts afresh at any sequence (normally 0)
    assert table.check(PID, 2, 0, 4) == (Verdict.APPEND, None)
    table.register(PID, 2, 0, 4, "new")
    assert table.check(PID, 2, 0, 4) == (Verdict.DUPLICATE, "new")
    assert table.check(PID, 2, 5, 9) == (Verdict.APPEND, None)  # the old epoch's 5..9 is forgotten
    assert table.check(PID, 1, 10, 12) == (Verdict.FENCED, None)
    assert len(table) == 1


def test_sequence_wraps_around():
    table = ProducerTable()
    last = append(table, PID, 0, SEQ_MAX - 2, 3, "a")
    assert last == SEQ_MAX
    assert table.check(PID, 0, 0, 4) == (Verdict.APPEND, None)
    assert table.check(PID, 0, SEQ_MAX + 1, SEQ_MAX + 5)[0] is Verdict.OUT_OF_ORDER  # not a valid int32 seq
    table.register(PID, 0, 0, 4, "b")
    assert table.check(PID, 0, 5, 5)[0] is Verdict.APPEND


def test_batch_straddling_the_wrap():
    table = ProducerTable()
    append(table, PID, 0, 0, 1, "first")
    # fast-forward a producer near the wrap: a new epoch may start anywhere
    table.register(PID, 1, SEQ_MAX - 1, last_sequence(SEQ_MAX - 1, 4), "straddle")  # SEQ_MAX-1 .. 1
    assert last_sequence(SEQ_MAX - 1, 4) == 1
    assert table.check(PID, 1, SEQ_MAX - 1, 1) == (Verdict.DUPLICATE, "straddle")
    assert table.check(PID, 1, 2, 3)[0] is Verdict.APPEND


def test_forget_drops_a_failed_batch_so_its_retry_appends():
    table = ProducerTable()
    append(table, PID, 0, 0, 5, "ok")        # 0..4 written
    append(table, PID, 0, 5, 5, "pending")   # 5..9 in flight
    assert table.check(PID, 0, 5, 9)[0] is Verdict.DUPLICATE
    table.forget(PID, 5)                     # the write failed
    assert table.check(PID, 0, 5, 9) == (Verdict.APPEND, None)
    assert table.check(PID, 0, 0, 4) == (Verdict.DUPLICATE, "ok")  # other batches kept


def test_forget_only_batch_then_anything_appends():
    table = ProducerTable()
    append(table, PID, 0, 20, 5, "x")
    table.forget(PID, 20)
    assert table.check(PID, 0, 20, 24)[0] is Verdict.APPEND


def test_forget_and_settle_unknown_producer_are_noops():
    table = ProducerTable()
    table.forget(42, 0)
    table.settle(42, 0, "r")
    assert len(table) == 0


def test_settle_replaces_the_result():
    table = ProducerTable()
    future = object()
    append(table, PID, 0, 0, 3, future)
    assert table.check(PID, 0, 0, 2) == (Verdict.DUPLICATE, future)
    table.settle(PID, 0, 2**40)
    assert table.check(PID, 0, 0, 2) == (Verdict.DUPLICATE, 2**40)
    table.settle(PID, 99, "nothing")  # no batch starts at 99: nothing changes
    assert table.check(PID, 0, 0, 2) == (Verdict.DUPLICATE, 2**40)


def test_producers_are_independent():
    table = ProducerTable()
    append(table, 1, 0, 0, 5, "p1")
    append(table, 2, 7, 100, 5, "p2")
    assert table.check(1, 0, 5, 5)[0] is Verdict.APPEND
    assert table.check(2, 7, 105, 105)[0] is Verdict.APPEND
    assert table.check(2, 6, 105, 105)[0] is Verdict.FENCED
    assert table.check(1, 0, 100, 104)[0] is Verdict.OUT_OF_ORDER
    assert table.check(3, 0, 9, 9)[0] is Verdict.APPEND
    assert len(table) == 2


@settings(max_examples=100, deadline=None)
@given(st.integers(0, SEQ_MAX), st.lists(st.integers(1, 50), min_size=1, max_size=12),
       st.integers(0, 2**15 - 1))
def test_a_well_behaved_producer_always_appends_and_retries_are_duplicates(start, counts, epoch):
    table = ProducerTable()
    seq = start
    history = []
    for i, count in enumerate(counts):
        last = append(table, PID, epoch, seq, count, i)
        history.append((seq, last, i))
        seq = (last + 1) % 2**31
        for first, lst, result in history[-BATCHES_REMEMBERED:]:
            assert table.check(PID, epoch, first, lst) == (Verdict.DUPLICATE, result)


def test_the_least_recently_writing_producer_is_forgotten_beyond_the_cap(monkeypatch):
    from kop.backend import idempotence
    monkeypatch.setattr(idempotence, "MAX_PRODUCERS", 3)
    table = ProducerTable()
    for pid in (1, 2, 3):
        table.register(pid, 0, 0, 0, 100 + pid)
    table.register(1, 0, 1, 1, 201)  # producer 1 writes again: now 2 is the least recent
    table.register(4, 0, 0, 0, 104)
    assert len(table) == 3
    assert table.check(2, 0, 0, 0) == (Verdict.APPEND, None)  # forgotten: starts afresh
    assert table.check(1, 0, 1, 1) == (Verdict.DUPLICATE, 201)
    assert table.check(3, 0, 0, 0) == (Verdict.DUPLICATE, 103)


def test_producer_tags_round_trip_and_reject_garbage():
    from kop.backend.resends import parse_producer_tag, producer_tag
    assert parse_producer_tag(producer_tag(7, 2, 2**31 - 3, 4)) == (7, 2, 2**31 - 3, 4)
    for bad in ("", "1:2:3", "a:b:c:d", "1:2:3:4:5"):
        assert parse_producer_tag(bad) is None


def test_tail_start_walks_back_across_ledgers():
    from kop.backend.producer_recovery import tail_start
    stats = {"ledgers": [{"ledgerId": 10, "entries": 200}, {"ledgerId": 11, "entries": 0},
                         {"ledgerId": 12, "entries": 0}], "currentLedgerEntries": 30}
    assert tail_start(stats, 20) == (12, 10)  # within the open ledger
    assert tail_start(stats, 30) == (12, 0)
    assert tail_start(stats, 100) == (10, 130)  # 30 in ledger 12, the other 70 at the end of ledger 10
    assert tail_start(stats, 1000) == (10, 0)  # fewer entries than asked: from the first
    assert tail_start({"ledgers": [{"ledgerId": 3, "entries": 0}], "currentLedgerEntries": 0}, 10) is None
    assert tail_start({}, 10) is None
