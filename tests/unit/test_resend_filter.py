"""The resend filter (kop/backend/resends.py) and the empty batch that stands in for a resent batch."""

from __future__ import annotations

import pytest
from aiokafka.record.default_records import DefaultRecordBatch
from kafka.record.default_records import DefaultRecordBatch as KafkaPythonBatch

from kop.backend import resends
from kop.backend.resends import SeenBatches, producer_tag, records_of
from kop.protocol import records


def test_a_batch_seen_again_is_a_resend_and_new_ones_are_not():
    seen = SeenBatches()
    tags = [producer_tag(7, 0, first, first + 2) for first in (0, 3, 6)]
    assert [seen.is_resend(t) for t in tags] == [False, False, False]
    # The Pulsar client resends what awaited receipts, in order.
    assert [seen.is_resend(t) for t in tags[1:]] == [True, True]
    assert not seen.is_resend(producer_tag(7, 0, 9, 9))


def test_untagged_and_garbled_entries_are_never_resends():
    seen = SeenBatches()
    for _ in range(2):
        assert not seen.is_resend(None)
        assert not seen.is_resend("")
        assert not seen.is_resend("not:a:tag")


def test_producers_and_epochs_are_told_apart():
    seen = SeenBatches()
    assert not seen.is_resend(producer_tag(1, 0, 0, 4))
    assert not seen.is_resend(producer_tag(2, 0, 0, 4)), "another producer's sequences are its own"
    assert not seen.is_resend(producer_tag(1, 1, 0, 4)), "a new epoch starts afresh"
    assert seen.is_resend(producer_tag(1, 1, 0, 4))
    assert not seen.is_resend(producer_tag(1, 0, 0, 4)), "a stale epoch repeats nothing remembered"


def test_memory_is_bounded():
    seen = SeenBatches()
    for pid in range(resends.MAX_PRODUCERS + 50):
        seen.is_resend(producer_tag(pid, 0, 0, 0))
    assert len(seen) == resends.MAX_PRODUCERS
    assert not seen.is_resend(producer_tag(0, 0, 0, 0)), "the least recent producer was forgotten"
    old = SeenBatches()
    for first in range(resends.BATCHES_REMEMBERED + 1):
        old.is_resend(producer_tag(3, 0, first, first))
    assert not old.is_resend(producer_tag(3, 0, 0, 0)), "only the last batches of a producer are kept"


def test_records_of_wraps_with_the_sequence():
    assert records_of(5, 9) == 5
    assert records_of(2**31 - 2, 1) == 4


@pytest.mark.parametrize("reader", [DefaultRecordBatch, KafkaPythonBatch], ids=["aiokafka", "kafka-python"])
def test_an_emptied_batch_keeps_its_offsets_and_clients_step_over_it(reader):
    original = records.build_batch([records.Record(i, 1_700_000_000_000 + i, None, b"v%d" % i) for i in range(4)],
                                   compression=records.COMPRESSION_GZIP, producer_id=42, producer_epoch=1,
                                   base_sequence=10)
    empty = records.emptied(bytes(original), 1000)
    assert len(empty) == records.BATCH_HEADER_SIZE
    header = records.parse_header(empty)
    assert (header.base_offset, header.last_offset_delta, header.records_count) == (1000, 3, 0)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 1, 10)
    assert header.compression == records.COMPRESSION_NONE
    batch = reader(empty)
    assert batch.validate_crc()
    assert list(batch) == []
    assert batch.next_offset == 1004


def test_an_empty_batch_from_scratch_is_valid():
    empty = records.empty_batch(2**40, 0, base_timestamp=5, max_timestamp=5)
    batch = KafkaPythonBatch(empty)
    assert batch.validate_crc() and list(batch) == [] and batch.next_offset == 2**40 + 1
