"""Consumer-group metrics: group counts and members at scrape time, consumer lag in the background.

With contiguous offsets (offsets.mode = "contiguous", the default) lag is Kafka's: the partition's
log end offset minus the committed offset, in records, for every entry format. Every
``metrics.lag_interval_s`` the gateway asks the log end of each partition its own groups committed
on (at most ``metrics.lag_max_partitions`` per round).

With packed offsets, lag comes from Pulsar, not from Kafka offsets (which are packed positions, not
record counts, mapping/offsets.py): the cursor sync (cursor_sync.py) keeps a durable subscription per group at its
committed offset, so the subscription's backlog *is* what the group has not consumed. Every
``metrics.lag_interval_s`` the gateway reads the stats of each partition its own groups committed
on (one admin call per partition, at most ``metrics.lag_max_partitions`` per round) and sets
``kop_consumer_lag_messages{group, topic, partition}`` to the subscription's ``msgBacklog``.

Units: with ``metrics.lag_precise`` (the default) Pulsar counts the messages inside batch entries,
so in the ``pulsar`` entry format the figure is records; in the ``kafka`` format an entry is one
Pulsar message holding a whole Kafka batch, so the figure is batches. The figure trails commits by
the cursor-sync delay (``groups.cursor_sync_interval_s``, 1 s by default) plus the collection interval.
Each gateway of a fleet reports the groups it coordinates; sum by group across gateways.
"""

from __future__ import annotations

import logging
import time

from prometheus_client.core import GaugeMetricFamily

from .. import metrics
from ..tasks import Periodic
from . import scope
from .state import GroupState

log = logging.getLogger(__name__)


class GroupCollector:
    """``kop_groups{state}`` and ``kop_group_members{group}``, read from the coordinator at scrape time."""

    def __init__(self, coordinator) -> None:
        self._coordinator = coordinator

    def describe(self):
        return []  # no fixed samples: the registry calls collect() when scraped

    def collect(self):
        counts = {state.value: 0 for state in GroupState}
        members = GaugeMetricFamily("kop_group_members", "Members of each group this gateway coordinates",
                                    labels=["group"])
        per_label: dict[str, int] = {}
        for group_id, state, member_count in self._coordinator.census():
            counts[state.value] += 1
            label = metrics.group_label(scope.display(group_id))
            per_label[label] = per_label.get(label, 0) + member_count
        for label, n in per_label.items():
            members.add_metric([label], n)
        groups = GaugeMetricFamily("kop_groups", "Groups this gateway coordinates, by state", labels=["state"])
        for state, n in counts.items():
            groups.add_metric([state], n)
        yield groups
        yield members


class LagCollector:
    """Sets ``kop_consumer_lag_messages`` for the groups this gateway coordinates (module docstring)."""

    def __init__(self, coordinator, admin, interval_s: float, max_partitions: int, precise: bool,
                 log_end=None) -> None:
        """``log_end(pulsar topic)``: a partition's log end offset, where offsets are contiguous."""
        self._coordinator = coordinator
        self._admin = admin
        self._log_end = log_end
        self.interval_s = interval_s
        self.max_partitions = max_partitions
        self.precise = precise
        # A metric must never hold the gateway's shutdown up: a round in progress is cancelled at once.
        self._loop = Periodic("consumer lag", interval_s, self.collect_once, logger=log, stop_wait_s=0)
        self._shown: set[tuple[str, str, str]] = set()
        self._failures_logged = 0

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()

    async def collect_once(self) -> int:
        """One round; returns how many (group, partition) figures were set."""
        started = time.monotonic()
        sync = self._coordinator.cursor_sync
        wanted: dict[str, tuple[object, list[tuple[str, str, str, str]]]] = {}  # url -> (partition, [labels+sub])
        for group_id, commits in self._coordinator.all_committed():
            subscription = sync.subscription(group_id)
            for topic, index in list(commits):
                partition = sync.partition_of(group_id, topic, index)
                if partition.url not in wanted and len(wanted) >= self.max_partitions:
                    continue
                wanted.setdefault(partition.url, (partition, []))[1].append(
                    (metrics.group_label(scope.display(group_id)), metrics.topic_label(topic), str(index), subscription,
                     commits.get((topic, index))))
        shown: set[tuple[str, str, str]] = set()
        failures = []
        for partition, entries in wanted.values():
            if self._log_end is not None:
                try:
                    end = await self._log_end(partition)
                except Exception as exc:  # a deleted topic, Pulsar away: skip it this round
                    failures.append(f"{partition.url}: {exc}")
                    continue
                for group, topic, index, _subscription, commit in entries:
                    if commit is not None and commit.offset >= 0:
                        metrics.CONSUMER_LAG.labels(group, topic, index).set(max(end - commit.offset, 0))
                        shown.add((group, topic, index))
                continue
            try:
                stats = await self._admin.partition_stats(partition, self.precise)
            except Exception as exc:  # a deleted topic, Pulsar away: skip it this round
                failures.append(f"{partition.url}: {exc}")
                continue
            subscriptions = stats.get("subscriptions", {})
            for group, topic, index, subscription, _commit in entries:
                sub = subscriptions.get(subscription)
                if sub is None:
                    continue  # the cursor sync has not created it yet
                metrics.CONSUMER_LAG.labels(group, topic, index).set(int(sub.get("msgBacklog", 0)))
                shown.add((group, topic, index))
        for gone in self._shown - shown:
            try:
                metrics.CONSUMER_LAG.remove(*gone)
            except KeyError:
                pass
        self._shown = shown
        if failures and self._failures_logged < 10:
            self._failures_logged += 1
            log.warning("consumer lag: %d partition stats failed, e.g. %s", len(failures), failures[0])
        metrics.LAG_SCRAPE_SECONDS.set(time.monotonic() - started)
        return len(shown)
