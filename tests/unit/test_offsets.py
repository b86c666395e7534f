"""kop.mapping.offsets: the 29/20/14-bit packing of Pulsar positions into Kafka offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kop.mapping import offsets
from kop.mapping.offsets import (
    MAX_BATCH_SIZE,
    MAX_ENTRY_ID,
    MAX_LEDGER_ID,
    MAX_OFFSET,
    OffsetRangeError,
    Position,
    check_batch_size,
    check_max_entries_per_ledger,
    entry_base,
    log_end_offset,
    next_entry_offset,
    pack,
    unpack,
)

ledgers = st.integers(0, MAX_LEDGER_ID)
entries = st.integers(0, MAX_ENTRY_ID)
batch_indexes = st.integers(0, MAX_BATCH_SIZE - 1)
positions = st.tuples(ledgers, entries, batch_indexes)
# Values at the edges of each field get drawn far more often than uniform sampling would give.
edge_positions = st.tuples(
    st.sampled_from([0, 1, 2**19 - 1, 2**19, 10**8, MAX_LEDGER_ID - 1, MAX_LEDGER_ID]) | ledgers,
    st.sampled_from([0, 1, 49_999, 50_000, MAX_ENTRY_ID - 1, MAX_ENTRY_ID]) | entries,
    st.sampled_from([0, 1, MAX_BATCH_SIZE - 2, MAX_BATCH_SIZE - 1]) | batch_indexes,
)
FAST = settings(max_examples=300, deadline=None)


def test_layout_constants():
    assert (offsets.LEDGER_BITS, offsets.ENTRY_BITS, offsets.BATCH_BITS) == (29, 20, 14)
    assert MAX_LEDGER_ID == 2**29 - 1
    assert MAX_ENTRY_ID == 2**20 - 1
    assert MAX_BATCH_SIZE == 2**14 == 16_384
    assert MAX_OFFSET == 2**63 - 1


def test_known_values():
    assert pack(0, 0, 0) == 0
    assert pack(0, 0, 1) == 1
    assert pack(0, 1, 0) == 2**14
    assert pack(1, 0, 0) == 2**34
    assert pack(MAX_LEDGER_ID, MAX_ENTRY_ID, MAX_BATCH_SIZE - 1) == MAX_OFFSET
    assert pack(3, 4) == pack(3, 4, 0)  # batch index defaults to 0
    assert unpack(0) == Position(0, 0, 0)
    assert unpack(MAX_OFFSET) == Position(MAX_LEDGER_ID, MAX_ENTRY_ID, MAX_BATCH_SIZE - 1)
    pos = unpack(pack(7, 8, 9))
    assert (pos.ledger_id, pos.entry_id, pos.batch_index) == (7, 8, 9)


@FAST
@given(edge_positions)
def test_pack_unpack_round_trip(pos):
    offset = pack(*pos)
    assert 0 <= offset <= MAX_OFFSET
    assert unpack(offset) == pos


@FAST
@given(st.integers(0, MAX_OFFSET))
def test_unpack_pack_round_trip(offset):
    pos = unpack(offset)
    assert 0 <= pos.batch_index < MAX_BATCH_SIZE
    assert pack(*pos) == offset


@FAST
@given(edge_positions, edge_positions)
def test_order_preserved(a, b):
    # Positions compare lexicographically (ledger, entry, batch index) exactly as their offsets do.
    assert (a < b) == (pack(*a) < pack(*b))
    assert (a == b) == (pack(*a) == pack(*b))


@FAST
@given(st.integers(0, MAX_OFFSET), st.integers(0, MAX_OFFSET))
def test_order_preserved_from_offsets(x, y):
    assert (x < y) == (tuple(unpack(x)) < tuple(unpack(y)))


@pytest.mark.parametrize("ledger_id, entry_id, batch_index", [
    (2**29, 0, 0),
    (2**40, 0, 0),
    (0, 2**20, 0),
    (0, 2**30, 0),
    (0, 0, MAX_BATCH_SIZE + 1),
    (0, 0, 2**20),
    (-1, 0, 0),
    (0, -1, 0),
    (0, 0, -1),
    (MAX_LEDGER_ID + 1, MAX_ENTRY_ID + 1, MAX_BATCH_SIZE + 1),
])
def test_pack_rejects_out_of_bounds(ledger_id, entry_id, batch_index):
    with pytest.raises(OffsetRangeError):
        pack(ledger_id, entry_id, batch_index)


def test_offset_range_error_is_a_value_error():
    assert issubclass(OffsetRangeError, ValueError)


@pytest.mark.parametrize("offset", [-1, -(2**63), 2**63, 2**64, 2**63 + 5])
def test_unpack_rejects_offsets_outside_0_to_2_63(offset):
    with pytest.raises(OffsetRangeError):
        unpack(offset)


@FAST
@given(st.integers(max_value=-1) | st.integers(min_value=2**63))
def test_unpack_rejects_any_offset_outside_range(offset):
    with pytest.raises(OffsetRangeError):
        unpack(offset)


@FAST
@given(st.integers(min_value=2**29) | st.integers(max_value=-1), entries, batch_indexes)
def test_pack_rejects_any_bad_ledger(ledger_id, entry_id, batch_index):
    with pytest.raises(OffsetRangeError):
        pack(ledger_id, entry_id, batch_index)


@FAST
@given(ledgers, st.integers(min_value=2**20) | st.integers(max_value=-1), batch_indexes)
def test_pack_rejects_any_bad_entry(ledger_id, entry_id, batch_index):
    with pytest.raises(OffsetRangeError):
        pack(ledger_id, entry_id, batch_index)


@FAST
@given(ledgers, entries, st.integers(min_value=MAX_BATCH_SIZE + 1) | st.integers(max_value=-1))
def test_pack_rejects_any_bad_batch_index(ledger_id, entry_id, batch_index):
    with pytest.raises(OffsetRangeError):
        pack(ledger_id, entry_id, batch_index)


# --- the carry: batch index MAX_BATCH_SIZE is "one past the last record of a full entry" ------------

@FAST
@given(ledgers, st.integers(0, MAX_ENTRY_ID - 1))
def test_carry_into_next_entry(ledger_id, entry_id):
    assert pack(ledger_id, entry_id, MAX_BATCH_SIZE) == pack(ledger_id, entry_id + 1, 0)
    assert pack(ledger_id, entry_id, MAX_BATCH_SIZE) == pack(ledger_id, entry_id, MAX_BATCH_SIZE - 1) + 1


@FAST
@given(st.integers(0, MAX_LEDGER_ID - 1))
def test_carry_at_last_entry_goes_into_next_ledger(ledger_id):
    assert pack(ledger_id, MAX_ENTRY_ID, MAX_BATCH_SIZE) == pack(ledger_id + 1, 0, 0)


def test_carry_past_the_very_last_position_is_refused():
    with pytest.raises(OffsetRangeError):
        pack(MAX_LEDGER_ID, MAX_ENTRY_ID, MAX_BATCH_SIZE)
    with pytest.raises(OffsetRangeError):
        next_entry_offset(MAX_LEDGER_ID, MAX_ENTRY_ID)
    # ... but the last ledger's other entries still carry fine.
    assert pack(MAX_LEDGER_ID, MAX_ENTRY_ID - 1, MAX_BATCH_SIZE) == pack(MAX_LEDGER_ID, MAX_ENTRY_ID, 0)


# --- entry_base, next_entry_offset, log_end_offset ------------------------------------------------------

@FAST
@given(edge_positions)
def test_entry_base(pos):
    ledger_id, entry_id, batch_index = pos
    base = entry_base(pack(*pos))
    assert base == pack(ledger_id, entry_id, 0)
    assert unpack(base) == (ledger_id, entry_id, 0)
    assert entry_base(base) == base


@FAST
@given(edge_positions)
def test_next_entry_offset(pos):
    ledger_id, entry_id, batch_index = pos
    if (ledger_id, entry_id) == (MAX_LEDGER_ID, MAX_ENTRY_ID):
        return
    nxt = next_entry_offset(ledger_id, entry_id)
    assert nxt > pack(ledger_id, entry_id, MAX_BATCH_SIZE - 1) >= pack(*pos)
    if entry_id < MAX_ENTRY_ID:
        assert nxt == pack(ledger_id, entry_id + 1, 0)
    else:
        assert nxt == pack(ledger_id + 1, 0, 0)
    assert unpack(nxt).batch_index == 0


@FAST
@given(st.tuples(ledgers, entries).filter(lambda le: le != (MAX_LEDGER_ID, MAX_ENTRY_ID)),
       st.integers(1, MAX_BATCH_SIZE), st.data())
def test_log_end_offset_bounds(le, records, data):
    ledger_id, entry_id = le
    end = log_end_offset(ledger_id, entry_id, records)
    assert end == pack(ledger_id, entry_id, records)
    # greater than every record of the entry
    assert end > pack(ledger_id, entry_id, records - 1)
    delta = data.draw(st.integers(0, records - 1))
    assert end > pack(ledger_id, entry_id, delta)
    # not greater than the first offset of any later entry (same ledger or a later one)
    assert end <= next_entry_offset(ledger_id, entry_id)
    if entry_id < MAX_ENTRY_ID:
        later_entry = data.draw(st.integers(entry_id + 1, MAX_ENTRY_ID))
        assert end <= pack(ledger_id, later_entry, 0)
    if ledger_id < MAX_LEDGER_ID:
        later_ledger = data.draw(st.integers(ledger_id + 1, MAX_LEDGER_ID))
        assert end <= pack(later_ledger, 0, 0)


def test_log_end_offset_of_full_entry_at_ledger_end():
    assert log_end_offset(5, MAX_ENTRY_ID, MAX_BATCH_SIZE) == pack(6, 0, 0)
    assert log_end_offset(5, 7, MAX_BATCH_SIZE) == pack(5, 8, 0)


def test_log_end_offset_rejects_too_many_records():
    with pytest.raises(OffsetRangeError):
        log_end_offset(0, 0, MAX_BATCH_SIZE + 1)


# --- KoP's failure modes, as named tests ------------------------------------------------------------------

def test_kop_failure_ledger_id_headroom():
    """KoP's 20/32/12 layout left 19 bits of ledger id (524,288 ledgers) and broke beyond; kop does not."""
    kop_limit = 2**19
    assert 10**8 > kop_limit
    big = 10**8
    for entry_id, batch_index in [(0, 0), (1, 5), (MAX_ENTRY_ID, MAX_BATCH_SIZE - 1)]:
        offset = pack(big, entry_id, batch_index)
        assert unpack(offset) == (big, entry_id, batch_index)
    # still ordered against its neighbours
    assert pack(big - 1, MAX_ENTRY_ID, MAX_BATCH_SIZE - 1) < pack(big, 0, 0) < pack(big, 0, 1) < pack(big + 1, 0, 0)
    assert pack(kop_limit - 1, 3, 3) < pack(kop_limit, 0, 0) < pack(big, 0, 0)


def test_kop_failure_maximum_offset_delta():
    """'Maximum offset delta exceeded': every record of a maximal batch is base + delta in one entry."""
    ledger_id, entry_id = 123_456, 49_999
    base = pack(ledger_id, entry_id, 0)
    check_batch_size(MAX_BATCH_SIZE)
    for delta in range(MAX_BATCH_SIZE):
        offset = base + delta
        assert delta < 2**31  # Kafka's int32 offset delta
        assert offset == pack(ledger_id, entry_id, delta)
        assert entry_base(offset) == base
        assert unpack(offset) == (ledger_id, entry_id, delta)
    last = base + MAX_BATCH_SIZE - 1
    assert last < next_entry_offset(ledger_id, entry_id)
    assert log_end_offset(ledger_id, entry_id, MAX_BATCH_SIZE) == last + 1


@pytest.mark.parametrize("count", [1, 2, 10_000, MAX_BATCH_SIZE])
def test_check_batch_size_accepts(count):
    check_batch_size(count)


@pytest.mark.parametrize("count", [0, -1, MAX_BATCH_SIZE + 1, 2**31])
def test_check_batch_size_refuses(count):
    with pytest.raises(OffsetRangeError):
        check_batch_size(count)


@FAST
@given(st.integers(0, MAX_LEDGER_ID - 1), st.integers(0, MAX_ENTRY_ID - 1), st.integers(1, MAX_BATCH_SIZE))
def test_kop_failure_stuck_after_gap_or_rollover(ledger_id, entry_id, records):
    """After the last record of an entry, offset+1 never lies past the next entry or the next ledger.

    A consumer fetches offset+1 next; a gateway resolving that to "the next existing position at or
    after it" must land on the first record of the next entry / ledger, never skip it or stay put.
    """
    last = pack(ledger_id, entry_id, records - 1)
    nxt = last + 1
    assert nxt <= pack(ledger_id, entry_id + 1, 0)
    assert nxt <= pack(ledger_id + 1, 0, 0)
    # last entry of a ledger, then the next ledger (ledger rollover)
    last_of_ledger = pack(ledger_id, MAX_ENTRY_ID, records - 1)
    assert last_of_ledger + 1 <= pack(ledger_id + 1, 0, 0)
    # moving forward: the offset a consumer asks next names a position strictly after the last record
    assert tuple(unpack(nxt)) > (ledger_id, entry_id, records - 1)
    assert tuple(unpack(last_of_ledger + 1)) > (ledger_id, MAX_ENTRY_ID, records - 1)


def test_kop_failure_stuck_at_full_entry_and_last_entry():
    full_last = pack(9, 41, MAX_BATCH_SIZE - 1)
    assert full_last + 1 == pack(9, 42, 0)  # a full batch: offset+1 is exactly the next entry's first record
    ledger_last = pack(9, MAX_ENTRY_ID, MAX_BATCH_SIZE - 1)
    assert ledger_last + 1 == pack(10, 0, 0)  # ... and the next ledger's first record at rollover
    # with a skipped ledger (trimmed / never used) the next offset still does not pass its first record
    assert ledger_last + 1 < pack(12, 0, 0)


@pytest.mark.parametrize("max_entries", [1, 200, 50_000, 2**20])
def test_check_max_entries_per_ledger_accepts(max_entries):
    check_max_entries_per_ledger(max_entries)


@pytest.mark.parametrize("max_entries", [2**20 + 1, 2**21, 10**9])
def test_check_max_entries_per_ledger_refuses(max_entries):
    with pytest.raises(OffsetRangeError):
        check_max_entries_per_ledger(max_entries)


def test_pulsar_default_ledger_fits():
    # the last entry id of a ledger rolled over at Pulsar's default 50,000 entries packs and is ordered
    assert unpack(pack(1, 49_999, 0)) == (1, 49_999, 0)
    assert pack(1, 49_999, MAX_BATCH_SIZE - 1) < pack(2, 0, 0)


def test_entry_before_is_the_last_position_wholly_below_an_offset():
    # what DeleteRecords moves a Pulsar cursor past (backend/log_start.py)
    assert offsets.entry_before(offsets.pack(7, 5, 0)) == (7, 4)
    assert offsets.entry_before(offsets.pack(7, 5, 3)) == (7, 4)  # entry 5 still holds records from 3 on
    assert offsets.entry_before(offsets.pack(7, 0, 0)) == (7, -1)  # Pulsar: before ledger 7's first entry
