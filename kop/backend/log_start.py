"""A partition's log start offset, as Kafka's DeleteRecords moves it: kept in Pulsar, so it survives
restarts and every gateway of a fleet shares it, and used to reclaim storage through Pulsar.

Where it is kept: the property ``kafka.log_start.<partition>`` of the Kafka topic's Pulsar
partitioned topic (an offset in the gateway's offsets.mode), next to its Kafka configs
(policies.py). It only grows: a DeleteRecords below it changes nothing. Two gateways moving one
partition's start at the same instant could, at worst, leave the smaller of the two (the write is a
read then a write); the next DeleteRecords moves it on.

Who reads it: ListOffsets "earliest" answers ``max(Pulsar's first entry, log start)``, read fresh;
Fetch answers OFFSET_OUT_OF_RANGE below it, read from the properties this gateway last saw (every
partition-count lookup refreshes them, and a DeleteRecords served here writes them through: another
gateway follows within its refresh, 5-10 s).

What Pulsar reclaims, and when: Pulsar deletes a ledger once every durable subscription has
acknowledged all of it and the topic's retention allows (retention.ms, see README "Retention").
So a DeleteRecords moves the Kafka groups' subscriptions (the cursor sync's ``<prefix><group>``)
that lie behind the new start up to it (Pulsar's expire-by-position: a cursor only ever moves
forward), then asks Pulsar to trim: the ledgers wholly before the start go as soon as retention lets
them -- at once with a retention of 0, after retention.ms otherwise; never with retention.ms=-1 (the
repartition topics of Kafka Streams keep theirs). Native Pulsar subscriptions are left alone.
"""

from __future__ import annotations

import logging

from ..mapping import offsets
from ..mapping.topics import partition_topic
from ..protocol.errors import ErrorCode, KafkaError
from . import topic_settings
from .errors import kafka_error_of

log = logging.getLogger(__name__)

PROPERTY_PREFIX = "kafka.log_start."


def _of(properties: dict[str, str] | None, partition: int) -> int:
    raw = (properties or {}).get(f"{PROPERTY_PREFIX}{partition}")
    return int(raw) if raw is not None and raw.isdigit() else 0


def cached(backend, topic: str, partition: int) -> int:
    """The log start as this gateway last saw it (0: the partition's own beginning). Synchronous."""
    return _of(topic_settings.properties_of(backend, topic), partition)


async def current(backend, topic: str, partition: int) -> int:
    """The log start as Pulsar has it now."""
    try:
        return _of(await backend.admin.topic_properties(backend.partitioned(topic)), partition)
    except Exception as exc:
        raise kafka_error_of(exc) from exc


async def delete_records(backend, topic: str, partition: int, offset: int) -> int:
    """Kafka's DeleteRecords for one partition: the new low watermark (log start). ``offset`` -1
    means the high watermark; beyond it (or below -1) OFFSET_OUT_OF_RANGE, changing nothing."""
    high_watermark = await backend.latest_offset(topic, partition)
    if offset == -1:
        offset = high_watermark
    if not 0 <= offset <= high_watermark:
        raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                         f"{topic}-{partition}: offset {offset} is not between 0 and the high watermark {high_watermark}")
    start = await current(backend, topic, partition)
    if offset <= start:
        return start
    try:
        await backend.admin.update_topic_properties(backend.partitioned(topic), {f"{PROPERTY_PREFIX}{partition}": str(offset)})
        await backend.admin.topic_properties(backend.partitioned(topic))  # Fetch on this gateway: at once
    except Exception as exc:
        raise kafka_error_of(exc) from exc
    await _reclaim(backend, topic, partition, offset)
    return offset


async def _reclaim(backend, topic: str, partition: int, offset: int) -> None:
    """Move the Kafka groups' subscriptions behind ``offset`` up to it, then let Pulsar trim. Best
    effort: the log start has moved whatever happens here."""
    pulsar_topic = partition_topic(backend.namespace, topic, partition)
    try:
        if backend.contiguous:  # the entry holding the start (entry_index.py); cursors go up to the one before
            target = await backend.cursor_target(pulsar_topic, offset)
            if target is None:
                return
            ledger_id, entry_id = target[0], target[1] - 1
        else:
            ledger_id, entry_id = offsets.entry_before(offset)
    except Exception as exc:
        log.warning("%s-%d: log start moved to %d, but its entry was not found: %s", topic, partition, offset, exc)
        return
    prefix = backend.config.groups.subscription_prefix
    admin = backend.admin
    try:
        cursors = (await admin.internal_stats(pulsar_topic)).get("cursors") or {}
        moved = 0
        for name, cursor in cursors.items():
            if not name.startswith(prefix) or _position(cursor.get("markDeletePosition")) >= (ledger_id, entry_id):
                continue
            await admin.expire_subscription_to(pulsar_topic, name, ledger_id, entry_id)
            moved += 1
        await admin.trim(pulsar_topic)
        if moved:
            log.info("%s-%d: log start %d; %d group subscriptions moved up to it", topic, partition, offset, moved)
    except Exception as exc:
        log.warning("%s-%d: log start moved to %d, but reclaiming storage failed: %s", topic, partition, offset, exc)


def _position(text: str | None) -> tuple[int, int]:
    try:
        ledger, entry = str(text).split(":")
        return int(ledger), int(entry)
    except ValueError:
        return (-1, -1)
