"""Mirror Kafka consumer-group commits onto durable Pulsar subscriptions (the "cursor sync").

When Kafka group ``g`` commits offset ``O`` on partition ``p`` of topic ``t``, kop moves a durable
subscription named ``<prefix><g>`` (default prefix ``kafka-group-``) on the Pulsar topic
``persistent://<tenant>/<namespace>/t-partition-p`` so that its read position is the entry holding
the record at ``O``. To a Pulsar operator the subscription *is* the Kafka group:

- ``pulsar-admin topics stats`` shows it with ``msgBacklog`` = what the group has not consumed yet,
  measured in **Pulsar entries** (see "What msgBacklog counts" below), and ``subscriptionProperties``
  ``{"kop.kafka.group": <the Kafka group id, verbatim>}``.
- Retention honours it like any durable subscription: the data the group has not consumed is not
  deleted, whatever the retention policy says (retention only governs *acknowledged* data).
- No consumer ever attaches to it. It is kop's bookkeeping; a native Pulsar consumer on the same
  subscription would be disconnected by every reset (``resetcursor`` fences the cursor).

Delay. ``note()`` only remembers the latest offset per (group, topic, partition); a background task
writes the pending ones every ``interval_s`` seconds. A commit therefore reaches Pulsar within
``interval_s`` plus the duration of one flush (:attr:`CursorSync.sync_delay_s`): per changed key one
``resetcursor`` call, plus one ``HEAD`` of the entry when the offset points inside an entry, plus one
``PUT`` when the subscription does not exist yet; ``concurrency`` keys at a time (a few milliseconds
each against a local broker). A commit of the same offset as the last synced one costs nothing.
Failures (Pulsar unreachable, 5xx) are logged once per flush and retried at the next interval, at
most ``max_attempts`` times; a later commit on the same key starts over. At most ``max_pending`` keys
wait at any time: beyond that the oldest are dropped with a warning and resynced on their next commit.

Retention: a durable subscription holds back deletion of what it has not acknowledged, so a group
that stops committing pins its partitions' data; docs/cursor-sync.md says what Pulsar does by
default and which namespace policies to set (message TTL, backlog quota, subscription expiry).

What ``msgBacklog`` counts, and why kop positions cursors at entry granularity (Pulsar counts
backlog in entries; a batch index inside an entry is not kept by ``resetcursor``): see
docs/cursor-sync.md. In short: ``msgBacklog`` is the number of Kafka batches (entries) holding at
least one record at or after the committed offset; an offset ``(L, E, b)`` with ``b > 0`` puts the
read position at ``L:E`` when records of that entry are left (the entry's record count, read with
``HEAD .../ledger/L/entry/E``, is above ``b``) and at ``L:E+1`` otherwise.

Offsets that name no message (gaps, deleted data) are handed to Pulsar as they are; Pulsar moves
such a position to the next existing entry, where a Kafka fetch continues too (docs/cursor-sync.md).
Timings measured on a local standalone are there too (~4-12 ms per key).

The Pulsar REST calls it makes (resetcursor, create, delete, entry HEAD) and their answers: docs/cursor-sync.md.

Subscription names: groups/subscription_names.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from ..backend.admin import AdminError, Conflict, NotFound, PulsarAdmin
from ..mapping import offsets as offset_layout
from ..mapping.topics import InvalidTopicName, Namespace, PulsarTopic, partition_topic
from ..tasks import CLOSE_TIMEOUT_S, Periodic, close_within
from . import scope
from .subscription_names import PREFIX_CHARS, escape_group

log = logging.getLogger(__name__)

Key = tuple[str, str, int]  # (group, Kafka topic, partition)

GROUP_PROPERTY = "kop.kafka.group"
# An assumed admin round trip for sync_delay_s before any flush has been timed (seconds).
_ROUND_TRIP_S = 0.5


class _Gone(Exception):
    """The topic partition no longer exists: nothing to sync, nothing to retry."""


class CursorSync:
    """Moves the durable subscription ``<prefix><group>`` to each committed offset (module docstring)."""

    def __init__(self, admin: PulsarAdmin, namespace: Namespace, prefix: str = "kafka-group-",
                 interval_s: float = 1.0, *, max_pending: int = 100_000, max_attempts: int = 5,
                 concurrency: int = 16, entry_cache_size: int = 10_000, locate=None) -> None:
        """``locate(pulsar topic, offset)``: the (ledger, entry) a contiguous offset's subscription
        reads from (backend.cursor_target), or None where offsets are packed positions."""
        if not prefix or not set(prefix) <= PREFIX_CHARS or prefix.startswith("pulsar.") or prefix[0] == ".":
            # Non-empty, so that no name is "", "." or ".."; "pulsar.repl" is Pulsar's replicator prefix.
            raise ValueError(f"subscription prefix {prefix!r}: 1+ characters of [a-zA-Z0-9_-.:=], "
                             "not starting with '.' or 'pulsar.'")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._admin = admin
        self._locate = locate
        self._ns = namespace
        self.prefix = prefix
        self.interval_s = float(interval_s)
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self._concurrency = concurrency
        self._entry_cache_size = entry_cache_size
        self._pending: OrderedDict[Key, int] = OrderedDict()  # newest note last
        self._attempts: dict[Key, int] = {}
        self._synced: OrderedDict[Key, int] = OrderedDict()  # last offset written to Pulsar, LRU
        self._deletes: dict[Key, int] = {}  # subscriptions whose deletion failed -> attempts
        self._entry_records: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self._lock = asyncio.Lock()
        self._loop = Periodic("cursor sync", self.interval_s, self.flush, logger=log)
        self._dropped_since_log = 0
        self._slowest_flush_s = 0.0
        self.last_flush_s = 0.0
        # Counters, for logs and tests.
        self.stats = {"synced": 0, "created": 0, "failed": 0, "gone": 0, "dropped": 0, "deleted": 0,
                      "entry_lookups": 0}

    # -- names ----------------------------------------------------------------------------------

    def subscription(self, group: str) -> str:
        """The Pulsar subscription name of Kafka group ``group`` (an internal id: groups/scope.py)."""
        return self.prefix + escape_group(scope.split(group)[1])

    def partition_of(self, group: str, topic: str, partition: int) -> PulsarTopic:
        """The partition the group's subscription lives on: in the group's own namespace."""
        namespace = scope.split(group)[0]
        ns = Namespace(*namespace.split("/", 1)) if namespace else self._ns
        return partition_topic(ns, topic, partition)

    @property
    def sync_delay_s(self) -> float:
        """Bound on the commit -> cursor delay: ``interval_s`` + one flush (at least one admin round trip,
        taken as the slowest flush seen so far, or 0.5 s before the first one). Holds while Pulsar answers."""
        return self.interval_s + max(_ROUND_TRIP_S, self._slowest_flush_s)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- recording commits ----------------------------------------------------------------------

    def note(self, group: str, topic: str, partition: int, offset: int) -> None:
        """Remember that ``group`` committed ``offset`` on (topic, partition); synced at the next flush."""
        if not 0 <= offset <= offset_layout.MAX_OFFSET:
            return  # -1 and friends: "no offset"; nothing to position
        key = (group, topic, partition)
        self._deletes.pop(key, None)
        if key in self._pending:
            self._pending[key] = offset
            self._pending.move_to_end(key)
            self._attempts.pop(key, None)
            return
        if self._synced.get(key) == offset:
            return
        self._pending[key] = offset
        self._trim_pending()

    def discard(self, groups: set[str]) -> None:
        """Forget the pending commits of ``groups`` (their coordinator moved to another gateway)."""
        for key in [k for k in self._pending if k[0] in groups]:
            del self._pending[key]
            self._attempts.pop(key, None)

    def _trim_pending(self) -> None:
        while len(self._pending) > self.max_pending:
            key, _ = self._pending.popitem(last=False)
            self._attempts.pop(key, None)
            self.stats["dropped"] += 1
            if self._dropped_since_log == 0:
                log.warning("cursor sync: more than %d commits pending, dropping the oldest (%s); they are "
                            "resynced on their next commit", self.max_pending, key)
            self._dropped_since_log += 1

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop.start()

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the background task (letting a running flush finish) and flush what is pending."""
        await self._loop.stop()
        if not await close_within(self.flush(), "cursor sync: final flush", timeout_s, logger=log):
            log.warning("cursor sync: final flush did not complete within %.0f s; %d commits not synced",
                        timeout_s, len(self._pending))

    # -- flushing -------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every pending commit to Pulsar now (and retry failed subscription deletions)."""
        async with self._lock:
            started = time.monotonic()
            batch, self._pending = self._pending, OrderedDict()
            deletes = dict(self._deletes)
            self._deletes.clear()
            if self._dropped_since_log > 1:
                log.warning("cursor sync: %d pending commits were dropped (bound %d)",
                            self._dropped_since_log, self.max_pending)
            self._dropped_since_log = 0
            if not batch and not deletes:
                return
            sem = asyncio.Semaphore(self._concurrency)
            done: set[Key] = set()

            async def one(key: Key, offset: int) -> tuple[Key, int, BaseException | None]:
                async with sem:
                    try:
                        await self._sync(key, offset)
                        return key, offset, None
                    except Exception as exc:
                        return key, offset, exc
                    finally:
                        done.add(key)
            try:
                results = await asyncio.gather(*(one(k, o) for k, o in batch.items()))
                await self._retry_deletes(deletes)
            except BaseException:
                # cancelled mid-flush: keep what was not written (newer notes win)
                for key, offset in batch.items():
                    if key not in done and key not in self._pending:
                        self._pending[key] = offset
                raise
            failures = []
            for key, offset, exc in results:
                if exc is None:
                    self._attempts.pop(key, None)
                    self._synced[key] = offset
                    self._synced.move_to_end(key)
                    while len(self._synced) > self.max_pending:
                        self._synced.popitem(last=False)
                    self.stats["synced"] += 1
                elif isinstance(exc, _Gone):
                    self._attempts.pop(key, None)
                    self.stats["gone"] += 1
                    log.info("cursor sync: %s partition %d no longer exists; commit of group %r not synced",
                             key[1], key[2], key[0])
                else:
                    self.stats["failed"] += 1
                    failures.append((key, exc))
                    if key in self._pending:  # a newer commit came in meanwhile: it starts over
                        continue
                    attempts = self._attempts.get(key, 0) + 1
                    if attempts >= self.max_attempts:
                        self._attempts.pop(key, None)
                        self.stats["dropped"] += 1
                        log.warning("cursor sync: giving up on group %r %s-%d offset %d after %d attempts "
                                    "(%s); resynced on its next commit", key[0], key[1], key[2], offset,
                                    attempts, exc)
                    else:
                        self._attempts[key] = attempts
                        self._pending[key] = offset
                        self._pending.move_to_end(key, last=False)  # oldest: first to go if over the bound
            self._trim_pending()
            if failures:
                log.warning("cursor sync: %d of %d subscription moves failed, retrying in %.1f s (first: "
                            "group %r %s-%d: %s)", len(failures), len(batch), self.interval_s,
                            failures[0][0][0], failures[0][0][1], failures[0][0][2], failures[0][1])
            self.last_flush_s = time.monotonic() - started
            self._slowest_flush_s = max(self._slowest_flush_s, self.last_flush_s)

    async def _sync(self, key: Key, offset: int) -> None:
        group, topic, partition = key
        try:
            pt = self.partition_of(group, topic, partition)
        except InvalidTopicName as exc:
            raise _Gone(str(exc)) from exc
        ledger_id, entry_id = await self._target(pt, offset)
        subscription = self.subscription(group)
        try:
            await self._admin.reset_subscription(pt, subscription, ledger_id, entry_id)
            return
        except NotFound as exc:
            if not _subscription_missing(exc):
                raise _Gone(str(exc)) from exc
        try:
            await self._admin.create_subscription(pt, subscription, ledger_id, entry_id, {GROUP_PROPERTY: scope.split(group)[1]})
            self.stats["created"] += 1
        except Conflict:  # created meanwhile (another gateway): move it
            await self._admin.reset_subscription(pt, subscription, ledger_id, entry_id)
        except AdminError as exc:
            if exc.status in (404, 412):  # "Topic does not exist and cannot be auto-created"
                raise _Gone(str(exc)) from exc
            raise

    async def _target(self, pt: PulsarTopic, offset: int) -> tuple[int, int]:
        """The (ledger, entry) the read position must be at for Kafka offset ``offset``."""
        if self._locate is not None:
            located = await self._locate(pt, offset)
            if located is not None:
                return located
        ledger_id, entry_id, batch_index = offset_layout.unpack(offset)
        if batch_index == 0:
            return ledger_id, entry_id
        records = await self._records_in_entry(pt, ledger_id, entry_id)
        if records is None or batch_index < records:
            return ledger_id, entry_id  # records left in it (or no such entry: Pulsar takes the next)
        return ledger_id, entry_id + 1

    async def _records_in_entry(self, pt: PulsarTopic, ledger_id: int, entry_id: int) -> int | None:
        cache_key = (pt.rest_path, ledger_id, entry_id)
        cached = self._entry_records.get(cache_key)
        if cached is not None:
            self._entry_records.move_to_end(cache_key)
            return cached
        self.stats["entry_lookups"] += 1
        records = await self._admin.entry_records(pt, ledger_id, entry_id)
        if records is None:
            return None
        self._entry_records[cache_key] = records
        if len(self._entry_records) > self._entry_cache_size:
            self._entry_records.popitem(last=False)
        return records

    # -- removing -------------------------------------------------------------------------------

    async def remove(self, group: str, topic: str, partition: int) -> None:
        """Delete the group's subscription on one partition (Kafka OffsetDelete). Never raises."""
        await self._remove(group, {(group, topic, partition)}, whole_group=False)

    async def remove_group(self, group: str, partitions: list[tuple[str, int]]) -> None:
        """Delete the group's subscription on each partition (and on every partition it was synced on).

        A subscription that does not exist (404) is fine. Other failures are logged and retried at the
        next flushes (``max_attempts``); this never raises, so a Kafka DeleteGroups does not fail on it.
        """
        await self._remove(group, {(group, t, p) for t, p in partitions}, whole_group=True)

    async def _remove(self, group: str, keys: set[Key], whole_group: bool) -> None:
        async with self._lock:
            if whole_group:
                keys |= {k for k in self._synced if k[0] == group}
                keys |= {k for k in self._pending if k[0] == group}
            for key in keys:
                self._pending.pop(key, None)
                self._attempts.pop(key, None)
                self._synced.pop(key, None)
            await self._retry_deletes(dict.fromkeys(keys, 0))

    async def _retry_deletes(self, deletes: dict[Key, int]) -> None:
        if not deletes:
            return
        sem = asyncio.Semaphore(self._concurrency)

        async def one(key: Key, attempts: int) -> None:
            async with sem:
                group, topic, partition = key
                try:
                    pt = self.partition_of(group, topic, partition)
                    await self._admin.delete_subscription(pt, self.subscription(group))
                    self.stats["deleted"] += 1
                except (NotFound, InvalidTopicName):
                    pass
                except Exception as exc:
                    if key in self._pending:  # committed again meanwhile: keep the subscription
                        return
                    if attempts + 1 >= self.max_attempts:
                        log.warning("cursor sync: could not delete subscription %r on %s-%d after %d "
                                    "attempts (%s); delete it with pulsar-admin", self.subscription(group),
                                    topic, partition, attempts + 1, exc)
                    else:
                        log.warning("cursor sync: deleting subscription %r on %s-%d failed (%s); retrying",
                                    self.subscription(group), topic, partition, exc)
                        self._deletes[key] = attempts + 1
        await asyncio.gather(*(one(k, a) for k, a in deletes.items()))


def _subscription_missing(exc: NotFound) -> bool:
    """A 404 from resetcursor about the subscription (create it), not about the topic (do not)."""
    text = str(exc)
    reason = text.split(": ", 2)[-1] if ": " in text else text
    return "Subscription" in reason and "not found" in reason.lower()
