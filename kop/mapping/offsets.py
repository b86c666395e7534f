"""Kafka offsets <-> Pulsar positions (ledger id, entry id, batch index): a pure bit layout.

A Kafka offset is a signed 64-bit integer that clients only ever see as non-negative, so 63 bits are
usable. kop packs a Pulsar message position into them:

    bit 62 ............ 34 | 33 ........... 14 | 13 ....... 0
        ledger id (29 bits) | entry id (20 bits) | batch index (14 bits)

Bounds, and why each is safe:

- **ledger id < 2**29 (536,870,912).** BookKeeper ledger ids are cluster-wide counters. KoP's old
  20/32/12 split left 19 usable bits (524,288 ledgers) and ran out; 29 bits is 1,024 times more: a
  cluster creating 100,000 ledgers a day (data and cursor ledgers together) lasts 14 years. An id past
  the bound is refused with :class:`OffsetRangeError` and a clear log line, never wrapped.
- **entry id < 2**20 (1,048,576) per ledger.** Pulsar rolls a ledger over after
  ``managedLedgerMaxEntriesPerLedger`` entries (default 50,000); kop checks that setting against
  this bound when it starts (:func:`check_max_entries_per_ledger`).
- **batch index < 2**14 (16,384) records per Kafka batch.** One Kafka batch is always one Pulsar
  entry (a Pulsar batch in the ``pulsar`` format, one message in the ``kafka`` format), so a record's
  offset is ``base + offset_delta`` exactly as Kafka clients compute it, and "Maximum offset delta
  exceeded" cannot happen: a batch larger than the field is refused on produce
  (RECORD_LIST_TOO_LARGE) before anything is written. librdkafka's default ``batch.num.messages``
  is 10,000 and Java's 16 KiB ``batch.size`` holds far fewer records.

Consequences, documented as known differences from Apache Kafka:

- Offsets are strictly increasing within a partition (ledger ids only grow, entry ids grow within a
  ledger) but **not contiguous**: the next batch after ``(L, E, n records)`` starts at ``(L, E+1, 0)``
  or ``(L', 0, 0)``. Kafka clients only compare offsets and add record deltas, which holds.
- A fetch at an offset that names no record (a gap: past the end of a batch, an entry that was
  never written, a ledger that was skipped or trimmed) continues at the next existing record:
  :func:`next_position` gives the position to read from.
- The log end offset after the last entry ``(L, E)`` holding ``n`` records is ``pack(L, E, n)``:
  greater than every existing offset and not greater than any future one.
"""

from __future__ import annotations

from typing import NamedTuple

LEDGER_BITS = 29
ENTRY_BITS = 20
BATCH_BITS = 14

MAX_LEDGER_ID = (1 << LEDGER_BITS) - 1
MAX_ENTRY_ID = (1 << ENTRY_BITS) - 1
MAX_BATCH_SIZE = 1 << BATCH_BITS  # records in one Kafka batch; batch indexes run 0 .. MAX_BATCH_SIZE-1

_ENTRY_SHIFT = BATCH_BITS
_LEDGER_SHIFT = BATCH_BITS + ENTRY_BITS
_BATCH_MASK = (1 << BATCH_BITS) - 1
_ENTRY_MASK = (1 << ENTRY_BITS) - 1

MAX_OFFSET = (1 << (LEDGER_BITS + ENTRY_BITS + BATCH_BITS)) - 1
assert MAX_OFFSET == (1 << 63) - 1


class OffsetRangeError(ValueError):
    """A Pulsar position, or an offset, lies outside the layout's bounds."""


class Position(NamedTuple):
    ledger_id: int
    entry_id: int
    batch_index: int


def pack(ledger_id: int, entry_id: int, batch_index: int = 0) -> int:
    """The Kafka offset of the record at (ledger_id, entry_id, batch_index).

    ``batch_index == MAX_BATCH_SIZE`` is accepted: it is the "one past the last record" position of an
    entry holding a full batch, used as a log end offset.
    """
    if not 0 <= ledger_id <= MAX_LEDGER_ID:
        raise OffsetRangeError(f"ledger id {ledger_id} outside 0..{MAX_LEDGER_ID} ({LEDGER_BITS} bits)")
    if not 0 <= entry_id <= MAX_ENTRY_ID:
        raise OffsetRangeError(f"entry id {entry_id} outside 0..{MAX_ENTRY_ID} ({ENTRY_BITS} bits)")
    if not 0 <= batch_index <= MAX_BATCH_SIZE:
        raise OffsetRangeError(f"batch index {batch_index} outside 0..{MAX_BATCH_SIZE}")
    if batch_index == MAX_BATCH_SIZE:  # carry into the next entry: still above every record of this one
        offset = (ledger_id << _LEDGER_SHIFT) + ((entry_id + 1) << _ENTRY_SHIFT)
        if offset > MAX_OFFSET:
            raise OffsetRangeError("the position after the last entry of the last ledger id has no offset")
        return offset
    return (ledger_id << _LEDGER_SHIFT) | (entry_id << _ENTRY_SHIFT) | batch_index


def unpack(offset: int) -> Position:
    """The position an offset names. Every offset in 0..MAX_OFFSET names exactly one position."""
    if not 0 <= offset <= MAX_OFFSET:
        raise OffsetRangeError(f"offset {offset} outside 0..{MAX_OFFSET}")
    return Position(offset >> _LEDGER_SHIFT, (offset >> _ENTRY_SHIFT) & _ENTRY_MASK, offset & _BATCH_MASK)


def entry_base(offset: int) -> int:
    """The offset of the first record of the entry holding ``offset`` (batch index 0)."""
    return offset & ~_BATCH_MASK


def entry_before(offset: int) -> tuple[int, int]:
    """(ledger, entry) of the last position wholly before ``offset``: ``(L, E - 1)`` for an offset in
    entry ``(L, E)`` (``(L, -1)``, Pulsar's "before the first entry of L", when E is 0). Everything
    up to it lies below ``offset``; what a DeleteRecords moves a Pulsar cursor past."""
    ledger_id, entry_id, _ = unpack(offset)
    return ledger_id, entry_id - 1


def next_entry_offset(ledger_id: int, entry_id: int) -> int:
    """The smallest offset any entry written after (ledger_id, entry_id) can have."""
    return pack(ledger_id, entry_id, MAX_BATCH_SIZE)


def log_end_offset(ledger_id: int, entry_id: int, records_in_entry: int) -> int:
    """Kafka's log end offset (next offset) given the last entry of a partition."""
    return pack(ledger_id, entry_id, max(records_in_entry, 1))


def check_batch_size(records_count: int) -> None:
    if not 1 <= records_count <= MAX_BATCH_SIZE:
        raise OffsetRangeError(
            f"a batch of {records_count} records does not fit kop's {BATCH_BITS}-bit batch index "
            f"(at most {MAX_BATCH_SIZE} records per batch)")


def check_max_entries_per_ledger(max_entries: int) -> None:
    """Refuse to start against a Pulsar whose ledgers could outgrow the entry-id field."""
    if max_entries > MAX_ENTRY_ID + 1:
        raise OffsetRangeError(
            f"Pulsar's managedLedgerMaxEntriesPerLedger={max_entries} exceeds kop's {ENTRY_BITS}-bit "
            f"entry id field ({MAX_ENTRY_ID + 1}); lower it or offsets would collide")
