"""mapping/offset_index.py: contiguous offsets from broker entry indexes, and the sparse index of
known entries (pure). Properties: spans cover each record once, floor() finds the entry holding an
offset or the nearest known one below it, memory stays bounded, thinning never gives a wrong answer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kop.mapping.offset_index import SparseIndex, Span, span_of


def _log(counts: list[int]) -> list[Span]:
    """Entries as a broker stamps them: index = running message count - 1."""
    spans, index, entry = [], -1, 0
    for count in counts:
        index += count
        spans.append(span_of(index, count, 7, entry))
        entry += 1
    return spans


def test_an_entry_holds_the_offsets_up_to_its_index():
    assert span_of(4, 5, 3, 0) == Span(0, 5, 3, 0)
    assert span_of(7, 3, 3, 1).first == 5 and span_of(7, 3, 3, 1).end == 8
    with pytest.raises(ValueError):
        span_of(3, 0, 1, 1)


@given(st.lists(st.integers(1, 50), min_size=1, max_size=60))
def test_spans_of_a_log_are_contiguous_from_zero(counts):
    spans = _log(counts)
    assert spans[0].first == 0
    assert all(a.end == b.first for a, b in zip(spans, spans[1:]))
    assert spans[-1].end == sum(counts)


@settings(max_examples=300)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=200), st.integers(2, 40), st.data())
def test_floor_is_never_above_the_offset_and_exact_when_everything_is_known(counts, max_spans, data):
    spans = _log(counts)
    full, bounded = SparseIndex(max_spans=10_000), SparseIndex(max_spans=max_spans)
    for span in data.draw(st.permutations(spans)):
        full.note(span)
        bounded.note(span)
    assert len(bounded) <= max_spans
    offset = data.draw(st.integers(0, spans[-1].end + 5))
    exact = full.floor(offset)
    holding = [s for s in spans if s.first <= offset < s.end]
    assert exact == (holding[0] if holding else spans[-1])
    near = bounded.floor(offset)
    assert near is None or near.first <= offset  # thinned: never past the offset, maybe further below
    if near is not None:
        assert near in spans


def test_thinning_keeps_the_newest_entry_and_half_the_rest():
    index = SparseIndex(max_spans=8)
    spans = _log([1] * 9)
    for span in spans:
        index.note(span)
    assert len(index) <= 8 and index.last() == spans[-1]
    assert index.floor(spans[-1].first) == spans[-1]


def test_after_and_forget_before():
    index = SparseIndex()
    spans = _log([3, 3, 3])
    for span in spans:
        index.note(span)
    assert index.after(2) == spans[1] and index.after(8) is None
    index.forget_before(6)
    assert index.floor(7) == spans[2] and index.floor(5) is None
    index.note(spans[2]._replace(ledger=9))  # the same first offset: replaced, not duplicated
    assert len(index) == 1 and index.last().ledger == 9
