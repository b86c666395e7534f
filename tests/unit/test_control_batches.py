"""protocol/control.py: transaction markers as Kafka control batches, checked against aiokafka's
record reader (a Kafka client's view) and against hand-made variants kop must not read as markers."""

from __future__ import annotations

import struct

import crc32c
from aiokafka.record.default_records import DefaultRecordBatch
from hypothesis import given
from hypothesis import strategies as st

from kop.protocol import records
from kop.protocol.control import Marker, control_batch, marker_of


@given(st.integers(0, 2**63 - 1), st.integers(0, 32767), st.booleans(), st.integers(0, 2**31 - 1),
       st.integers(0, 2**62), st.integers(0, 2**40))
def test_a_client_reads_the_marker_kop_writes(pid, epoch, commit, coordinator_epoch, base_offset, ts):
    batch = control_batch(Marker(pid, epoch, commit, coordinator_epoch), base_offset, ts)
    seen = DefaultRecordBatch(bytearray(batch))
    assert seen.validate_crc() and seen.is_control_batch and seen.is_transactional
    assert (seen.producer_id, seen.producer_epoch, seen.base_offset, seen.next_offset) == (pid, epoch, base_offset,
                                                                                            base_offset + 1)
    [record] = list(seen)
    assert record.key == struct.pack(">hh", 0, 1 if commit else 0)
    assert record.value == struct.pack(">hi", 0, coordinator_epoch)
    assert record.timestamp == ts
    assert marker_of(batch) == Marker(pid, epoch, commit, coordinator_epoch)
    # kop's own batch checks accept it where control batches are allowed (Fetch), not in Produce
    [(header, _)] = records.split_batches(batch, allow_control=True)
    assert header.is_control and header.records_count == 1


def test_batches_that_are_not_markers():
    plain = records.build_batch([records.Record(0, 5, b"k", b"v", [])], producer_id=1, producer_epoch=0,
                                base_sequence=0, is_transactional=True)
    assert marker_of(plain) is None
    batch = bytearray(control_batch(Marker(1, 0, True)))
    struct.pack_into(">h", batch, records.BATCH_HEADER_SIZE + 7, 2)  # control type 2: not ABORT or COMMIT
    struct.pack_into(">I", batch, 17, crc32c.crc32c(memoryview(batch)[21:]))
    assert marker_of(bytes(batch)) is None
