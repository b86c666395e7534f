"""Rebuilding a partition's idempotent-producer table from the partition itself, after a restart.

The table (idempotence.py) lives in memory. A gateway that was killed, or that takes a partition
over from another gateway of the fleet, starts with it empty; a client then retries the batch whose
answer the crash swallowed, and if Pulsar had stored it, an empty table would store it again.

So every batch of an idempotent producer is written with its identity: property
``__kafka_producer = "<producer id>:<epoch>:<first sequence>:<last sequence>"`` on its entry (the
``kafka`` format) or on its first message (the ``pulsar`` format; the ``__kafka_`` prefix keeps it
out of the Kafka headers). Before the first idempotent write to a partition, the gateway reads the
last RECOVERY_ENTRIES entries back and registers what it finds, as Kafka rebuilds its producer
state from the log. A client's retry comes within seconds, while its batch is among the last
entries; older duplicates are beyond what Kafka itself would catch (five batches per producer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..mapping import offsets
from .convert import PRODUCER
from .errors import kafka_error_of
from .idempotence import ProducerTable
from .resends import parse_producer_tag
from .wire.entries import EntryError, properties_of, split
from .wire.reader import WireReader

log = logging.getLogger(__name__)

# Entries read back from the end of a partition (across ledgers) before its first idempotent write.
RECOVERY_ENTRIES = 200


def tail_start(stats: dict[str, Any], entries: int) -> tuple[int, int] | None:
    """(ledger, entry) ``entries`` entries before the end, from Pulsar's internal stats (the open
    ledger's count is currentLedgerEntries); None when the partition holds no entry."""
    ledgers = stats.get("ledgers", [])
    remaining, start = entries, None
    for i in range(len(ledgers) - 1, -1, -1):
        count = int(ledgers[i].get("entries", 0))
        if i == len(ledgers) - 1:
            count = max(count, int(stats.get("currentLedgerEntries", 0)))
        if count <= 0:
            continue
        start = (int(ledgers[i]["ledgerId"]), max(count - remaining, 0))
        remaining -= count
        if remaining <= 0:
            break
    return start


async def recover(wire, admin, partition, table: ProducerTable, timeout_s: float) -> int:
    """Register in ``table`` the idempotent batches among the partition's last entries; returns how
    many. Raises a KafkaError (retriable) when Pulsar cannot be read: writing blind could duplicate."""
    started = time.monotonic()
    try:
        start = tail_start(await admin.internal_stats(partition), RECOVERY_ENTRIES)
        if start is None:
            return 0
        reader = await WireReader(wire, partition.url, start=start, receiver_queue=RECOVERY_ENTRIES).start()
    except Exception as exc:
        raise kafka_error_of(exc) from exc
    found = 0
    try:
        last = await reader.last_message_id()
        position = (-1, -1)
        while position < last:
            entry = reader.take()
            if entry is None:
                await asyncio.wait_for(reader.arrival(), timeout_s)
                continue
            position = (entry.ledger_id, entry.entry_id)
            tag = _tag_of(entry)
            parsed = parse_producer_tag(tag) if tag else None
            if parsed is not None:
                pid, epoch, first, last_seq = parsed
                table.register(pid, epoch, first, last_seq, offsets.pack(entry.ledger_id, entry.entry_id, 0))
                found += 1
    except Exception as exc:
        raise kafka_error_of(exc) from exc
    finally:
        await reader.close()
    log.info("%s: %d idempotent batches recovered from its last %d entries in %.2f s", partition.url, found,
             RECOVERY_ENTRIES, time.monotonic() - started)
    return found


def _tag_of(entry) -> str | None:
    """The identity on the entry (``kafka`` format) or on its first message (``pulsar`` format)."""
    if "num_messages_in_batch" not in entry.metadata:
        return properties_of(entry.metadata).get(PRODUCER)
    try:
        singles = split(entry.metadata, entry.payload)
    except EntryError:
        return None
    return properties_of(singles[0].metadata).get(PRODUCER) if singles else None
