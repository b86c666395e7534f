"""Recognising an idempotent batch that Pulsar holds twice, so Kafka consumers read it once.

The Pulsar client resends every message still awaiting its receipt when its connection to the
broker is cut (a topic unload, an ownership change, a broker restart). When the broker had already
stored one of them, and only the receipt was lost, the partition now holds that entry twice: the
original at the end of the old ledger, the resend soon after. kop's own sequence check
(idempotence.py) cannot stop it: kop sent the batch once and got one receipt. Pulsar's broker-side
deduplication could, but it is a namespace policy kop does not own, and it answers a resend with
the position -1:-1, which has no Kafka offset.

Every batch of an idempotent Kafka producer carries its identity in the entry
(``__kafka_producer = "<producer id>:<epoch>:<first sequence>:<last sequence>"``, see
producer_recovery.py). A reader remembers the identities it has passed; an entry whose identity it
has just seen is the resend, and goes to the consumer as an *empty* batch over the same offsets:
a v2 batch with no records, as Kafka's log cleaner leaves behind, which every client steps over.
Offsets stay as they are; the consumer simply never sees the records twice.

Pure: no I/O, no Pulsar, no asyncio.
"""

from __future__ import annotations

from collections import deque

from .idempotence import SEQUENCE_MODULUS

# Batches remembered per producer: a Kafka idempotent producer has at most 5 in flight per
# partition, and only those can be resent; a margin on top.
BATCHES_REMEMBERED = 8
# Producers remembered per reader, the least recently seen forgotten first (a bound on memory).
MAX_PRODUCERS = 1_000


def producer_tag(producer_id: int, epoch: int, first_seq: int, last_seq: int) -> str:
    return f"{producer_id}:{epoch}:{first_seq}:{last_seq}"


def parse_producer_tag(value: str) -> tuple[int, int, int, int] | None:
    try:
        pid, epoch, first, last = (int(x) for x in value.split(":"))
    except ValueError:
        return None
    return pid, epoch, first, last


def records_of(first_seq: int, last_seq: int) -> int:
    """Records in a batch from its sequence range (sequences wrap at 2**31)."""
    return (last_seq - first_seq) % SEQUENCE_MODULUS + 1


class SeenBatches:
    """The idempotent batches one reader has passed, in log order."""
    __slots__ = ("_producers",)

    def __init__(self) -> None:
        self._producers: dict[int, tuple[int, deque]] = {}

    def is_resend(self, tag: str | None) -> bool:
        """Whether the entry tagged ``tag`` repeats one passed before; if not, it is remembered.

        Call it once per entry, when the entry is passed (returned or stepped over), not when it is
        merely looked at: an entry looked at twice would otherwise count as its own repeat."""
        parsed = parse_producer_tag(tag) if tag else None
        if parsed is None:
            return False
        pid, epoch, first, last = parsed
        known = self._producers.pop(pid, None)  # re-inserted last: the least recent goes first
        if known is None or epoch > known[0]:
            known = (epoch, deque(maxlen=BATCHES_REMEMBERED))
        elif epoch < known[0]:
            self._producers[pid] = known
            return False  # a stale epoch: not a resend of anything remembered
        self._producers[pid] = known
        batches = known[1]
        if (first, last) in batches:
            return True
        batches.append((first, last))
        if len(self._producers) > MAX_PRODUCERS:
            del self._producers[next(iter(self._producers))]
        return False

    def __len__(self) -> int:
        return len(self._producers)
