"""What a topic's Kafka configs mean for the records produced to it, enforced as a Kafka broker does
before anything is written (Produce calls :func:`check` for each batch):

- ``cleanup.policy`` with ``compact``: every record needs a key, else the batch is refused with
  INVALID_RECORD and the keyless records listed in the partition's ``record_errors`` (KIP-467):
  "Compacted topic cannot accept message without key in topic partition t-0.";
- ``max.message.bytes`` (when the topic sets it): a larger batch is MESSAGE_TOO_LARGE;
- ``message.timestamp.after.max.ms`` (default one hour) and ``message.timestamp.before.max.ms``
  (default unbounded): a CreateTime record further ahead of / behind kop's clock is refused with
  INVALID_TIMESTAMP, listed likewise; not checked for LogAppendTime topics, as in Kafka.

The configs come from the topic's Pulsar properties as kop last looked them up (topic_settings.py):
kop's own changes apply at once, another gateway's within its partition-count refresh (5-10 s).
Records are decoded only for compacted topics, or when a batch's timestamps cross a bound (the
header's max timestamp tells the ``after`` case without decoding): other batches cost two
comparisons.
"""

from __future__ import annotations

import time

from ..protocol import records as kafka_records
from ..protocol.errors import ErrorCode, KafkaError
from ..protocol.records import BatchHeader
from .topic_settings import rules_of

MAX_SHOWN = 3  # record errors quoted in the partition's error message, as Kafka


class RecordsRefused(KafkaError):
    """A batch refused because of some of its records: ``record_errors`` is [(batch_index, message)]."""

    def __init__(self, code: ErrorCode, record_errors: list[tuple[int, str]]) -> None:
        shown = ", ".join(f"RecordError(batchIndex={i}, message='{m}')" for i, m in record_errors[:MAX_SHOWN])
        super().__init__(code, f"One or more records have been rejected due to {len(record_errors)} record errors "
                               f"in total, and only showing the first three errors at most: [{shown}]")
        self.record_errors = record_errors


def check(backend, topic: str, partition: int, header: BatchHeader, batch) -> None:
    """Raise KafkaError (RecordsRefused for record-level problems) if the topic's configs refuse the
    batch. Synchronous: Produce calls it between a batch's arrival and its write."""
    rules = rules_of(backend, topic)
    if rules.max_message_bytes is not None and header.size > rules.max_message_bytes:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE,
                         f"the batch of {header.size} bytes exceeds max.message.bytes={rules.max_message_bytes}")
    records = None
    if header.timestamp_type == 0 and not rules.log_append_time:
        now = int(time.time() * 1000)
        latest = now + rules.timestamp_after_max_ms
        earliest = now - rules.timestamp_before_max_ms if rules.timestamp_before_max_ms is not None else None
        if header.max_timestamp > latest or earliest is not None:
            records = _decode(batch)
            base = header.base_offset
            bad = [(i, f"Timestamp {r.timestamp} of message with offset {base + r.offset_delta} is out of range. "
                       f"The timestamp should be within [{earliest if earliest is not None else 'unbounded'}, "
                       f"{latest}]") for i, r in enumerate(records)
                   if r.timestamp > latest or (earliest is not None and r.timestamp < earliest)]
            if bad:
                raise RecordsRefused(ErrorCode.INVALID_TIMESTAMP, bad)
    if rules.compact:
        records = records if records is not None else _decode(batch)
        bad = [(i, f"Compacted topic cannot accept message without key in topic partition {topic}-{partition}.")
               for i, r in enumerate(records) if r.key is None]
        if bad:
            raise RecordsRefused(ErrorCode.INVALID_RECORD, bad)


def _decode(batch) -> list[kafka_records.Record]:
    try:
        return kafka_records.decode_records(batch)
    except kafka_records.BatchTooLargeError as exc:
        raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE, str(exc)) from exc
    except kafka_records.CorruptRecordError as exc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc
    except kafka_records.InvalidRecordError as exc:
        raise KafkaError(ErrorCode.INVALID_RECORD, str(exc)) from exc
