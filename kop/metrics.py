"""kop's Prometheus metrics: what they are, and the few helpers that feed them.

Every metric is named ``kop_*`` and lives in :data:`REGISTRY` (with the process collector's
``process_*``), served by server/status_http.py on ``metrics.listen_host:listen_port``
(127.0.0.1:9404 by default) at ``/metrics``.

Label cardinality is capped: a topic or group label takes at most ``metrics.max_topic_labels`` /
``metrics.max_group_labels`` distinct values per process; beyond that the value is counted under
``"__other__"`` (a client creating topics in a loop must not grow kop's memory or the scrape without
bound). The cap is set once at start-up by :func:`configure`.

Request errors: ``kop_requests_total{error}`` is the first non-zero error code in the answer (or
``NONE``), so each request counts once; ``kop_response_errors_total`` counts every non-zero code in
answers (a Produce to 3 partitions refused on 2 adds 2), like Kafka's ErrorsPerSec.

Costs: a prometheus_client increment takes a lock and a few calls (about a microsecond here), a
histogram observation more. On the hot path (every request, every batch produced or fetched) kop
counts instead into plain integers of :class:`Deferred`, which runs on the event loop's thread only,
and adds them to the prometheus children when the registry is collected (a scrape, or a test
reading a sample): the figures a scrape shows are the same, the cost per request is a dict update.
"""

from __future__ import annotations

import bisect
import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.process_collector import ProcessCollector

from . import __version__
from .protocol.errors import ErrorCode
from .protocol.fetch_response import FetchResponseData
from .protocol.messages import api_name
from .protocol.produce_response import ProduceResponseData

disable_created_metrics()  # the *_created series double the scrape and no dashboard uses them
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)


class Deferred:
    """Increments and histogram observations held as plain numbers until :meth:`flush` adds them to
    their prometheus_client children (module docstring). One thread only: the event loop's."""

    def __init__(self) -> None:
        self.counts: dict = {}          # counter child -> amount not yet added
        self.observed: dict = {}        # histogram child -> [count per bucket..., sum]

    def inc(self, child, amount: float = 1) -> None:
        counts = self.counts
        counts[child] = counts.get(child, 0) + amount

    def observe(self, child, value: float) -> None:
        pending = self.observed.get(child)
        if pending is None:
            pending = self.observed[child] = [0] * (len(child._upper_bounds) + 1)
        pending[bisect.bisect_left(child._upper_bounds, value)] += 1
        pending[-1] += value

    def flush(self) -> None:
        counts, self.counts = self.counts, {}
        for child, amount in counts.items():
            child.inc(amount)
        observed, self.observed = self.observed, {}
        for child, pending in observed.items():
            for bucket, count in zip(child._buckets, pending):
                if count:
                    bucket.inc(count)
            child._sum.inc(pending[-1])

    def collect(self):
        """As the registry's first collector: flush before the counters are read."""
        self.flush()
        return []


DEFERRED = Deferred()
REGISTRY.register(DEFERRED)

OTHER = "__other__"
# Request latency buckets: from a cached Metadata answer (~100 us) to a Fetch long poll (30 s).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

BUILD = Info("kop_build", "kop's version", registry=REGISTRY)
BUILD.info({"version": __version__})

REQUESTS = Counter("kop_requests", "Kafka requests answered, by API, version and first error code in the answer",
                   ["api", "version", "error"], registry=REGISTRY)
RESPONSE_ERRORS = Counter("kop_response_errors", "Non-zero error codes in Kafka answers (each occurrence)",
                          ["api", "error"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("kop_request_duration_seconds", "Time from a request's arrival to its answer being ready",
                            ["api"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
CONNECTIONS = Gauge("kop_connections", "Open Kafka client connections", ["listener"], registry=REGISTRY)
CONNECTIONS_OPENED = Counter("kop_connections_opened", "Kafka client connections accepted", ["listener"],
                             registry=REGISTRY)
CONNECTIONS_REFUSED = Counter("kop_connections_refused", "Connections refused by a limit", ["reason"],
                              registry=REGISTRY)
CONNECTIONS_CLOSED = Counter("kop_connections_closed_by_kop", "Connections kop closed (protocol violation, idle, "
                             "failed authentication)", ["reason"], registry=REGISTRY)

PRODUCED_BYTES = Counter("kop_produced_bytes", "Record batch bytes written to Pulsar", ["topic"], registry=REGISTRY)
PRODUCED_RECORDS = Counter("kop_produced_records", "Records written to Pulsar", ["topic"], registry=REGISTRY)
PRODUCE_BATCHES = Counter("kop_produce_batches", "Kafka batches written, one Pulsar entry each, by entry format",
                          ["entry_format"], registry=REGISTRY)
FETCHED_BYTES = Counter("kop_fetched_bytes", "Record batch bytes returned to consumers", ["topic"], registry=REGISTRY)
FETCHED_RECORDS = Counter("kop_fetched_records", "Records returned to consumers", ["topic"], registry=REGISTRY)
RESENDS_SKIPPED = Counter("kop_resent_batches_skipped", "Idempotent batches Pulsar held twice, returned empty "
                          "the second time (backend/resends.py)", registry=REGISTRY)
FETCH_WAITS = Counter("kop_fetch_waits", "Fetches that waited for data (long polls)", registry=REGISTRY)
FETCH_WAIT_SECONDS = Histogram("kop_fetch_wait_seconds", "How long a waiting fetch waited",
                               buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
                               registry=REGISTRY)

GROUP_REBALANCES = Counter("kop_group_rebalances", "Completed rebalances (a new generation), by group",
                           ["group"], registry=REGISTRY)
CONSUMER_LAG = Gauge("kop_consumer_lag_messages", "Records the group has not consumed: log end - committed offset, or "
                     "with packed offsets its Pulsar subscription's backlog (groups/lag.py)", ["group", "topic", "partition"], registry=REGISTRY)
LAG_SCRAPE_SECONDS = Gauge("kop_consumer_lag_collect_seconds", "Duration of the last consumer-lag collection",
                           registry=REGISTRY)

PULSAR_ERRORS = Counter("kop_pulsar_errors", "Pulsar-side failures turned into Kafka error codes, by Pulsar result",
                        ["error"], registry=REGISTRY)
PULSAR_RECONNECTS = Counter("kop_pulsar_reconnects", "Pulsar producers and readers kop opened again after a "
                            "failure", ["kind"], registry=REGISTRY)
PULSAR_READERS = Gauge("kop_pulsar_readers", "Pulsar readers open in kop's reader caches (at most fetch.max_readers "
                       "per backend)", registry=REGISTRY)

_ERROR_NAMES: dict[int, str] = {int(code): code.name for code in ErrorCode}


class LabelCap:
    """At most ``limit`` distinct values; later ones become ``"__other__"``."""
    __slots__ = ("limit", "_seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return OTHER
        self._seen.add(value)
        return value


topic_label = LabelCap(500)
group_label = LabelCap(500)


def configure(max_topic_labels: int, max_group_labels: int) -> None:
    topic_label.limit = max_topic_labels
    group_label.limit = max_group_labels


def error_name(code: int) -> str:
    return _ERROR_NAMES.get(code, str(code))


def error_codes(response) -> list[int]:
    """Every non-zero ``error_code`` in an answer object (kafka.protocol containers or kop's own
    dataclasses), depth first; record bytes are never entered."""
    kind = type(response)
    if kind is ProduceResponseData:  # the hot answers, walked without reflection
        return [p.error_code for t in response.responses for p in t.partition_responses if p.error_code]
    if kind is FetchResponseData:
        found = [p.error_code for t in response.responses for p in t.partitions if p.error_code]
        return [response.error_code, *found] if response.error_code else found
    found = []
    _walk(response, found)
    return found


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _walk(obj, found: list[int]) -> None:
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        fields = getattr(obj, "fields", None)
        if isinstance(fields, dict):  # a kafka.protocol DataContainer
            names = tuple(fields.keys())
        elif dataclasses.is_dataclass(obj):
            names = tuple(f.name for f in dataclasses.fields(obj))
        else:
            names = ()
        _FIELD_NAMES[type(obj)] = names
    for name in names:
        value = getattr(obj, name, None)
        if name == "error_code":
            if value:
                found.append(value)
        elif isinstance(value, list) and value and not isinstance(value[0], (bytes, bytearray, memoryview, int, str)):
            for item in value:
                _walk(item, found)


# Per-topic children, by topic name (bounded: past twice the label cap, children are not cached).
_produce_children: dict[str, tuple] = {}
_fetch_children: dict[str, tuple] = {}
_batch_children: dict[str, object] = {}


def _topic_children(cache: dict, topic: str, bytes_metric: Counter, records_metric: Counter) -> tuple:
    children = cache.get(topic)
    if children is None:
        label = topic_label(topic)
        children = (bytes_metric.labels(label), records_metric.labels(label))
        if len(cache) < 2 * topic_label.limit:
            cache[topic] = children
    return children


def produced(topic: str, size: int, records: int, entry_format: str) -> None:
    size_child, records_child = _topic_children(_produce_children, topic, PRODUCED_BYTES, PRODUCED_RECORDS)
    counts = DEFERRED.counts
    counts[size_child] = counts.get(size_child, 0) + size
    counts[records_child] = counts.get(records_child, 0) + records
    batches = _batch_children.get(entry_format)
    if batches is None:
        batches = _batch_children[entry_format] = PRODUCE_BATCHES.labels(entry_format)
    counts[batches] = counts.get(batches, 0) + 1


def fetched(topic: str, size: int, records: int) -> None:
    size_child, records_child = _topic_children(_fetch_children, topic, FETCHED_BYTES, FETCHED_RECORDS)
    DEFERRED.inc(size_child, size)
    DEFERRED.inc(records_child, records)


def fetch_waited(seconds: float) -> None:
    FETCH_WAITS.inc()
    FETCH_WAIT_SECONDS.observe(seconds)


# Labelled children by label values: .labels() costs a few microseconds, a dict lookup far less.
_request_children: dict[tuple[int, int, int], object] = {}
_latency_children: dict[int, object] = {}


def observe_request(api_key: int, version: int, response, seconds: float) -> None:
    codes = error_codes(response) if response is not None else []
    key = (api_key, version, codes[0] if codes else 0)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = REQUESTS.labels(api_name(api_key), str(version),
                                                         error_name(key[2]) if codes else "NONE")
    DEFERRED.inc(child)
    for code in codes:
        RESPONSE_ERRORS.labels(api_name(api_key), error_name(code)).inc()
    latency = _latency_children.get(api_key)
    if latency is None:
        latency = _latency_children[api_key] = REQUEST_SECONDS.labels(api_name(api_key))
    DEFERRED.observe(latency, seconds)
