"""A topic's Kafka configs as the hot path needs them, without an admin call: read from the Pulsar
properties kop last saw for the topic (admin.PulsarAdmin.known_properties, refreshed with every
partition-count lookup, and written through by kop's own changes).

:func:`rules_of` turns them into :class:`TopicRules`, cached until the properties object changes
(each lookup brings a new one), so a batch costs two dict lookups here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..mapping import topic_configs as tc
from ..mapping.topics import partitioned_topic

_DEFAULT_AFTER_MS = int(tc.default("message.timestamp.after.max.ms"))


@dataclass(frozen=True, slots=True)
class TopicRules:
    compact: bool = False
    max_message_bytes: int | None = None  # only when the topic sets it (else Pulsar's maxMessageSize)
    timestamp_after_max_ms: int = _DEFAULT_AFTER_MS
    timestamp_before_max_ms: int | None = None  # None: unbounded (Kafka's default, Long.MAX_VALUE)
    log_append_time: bool = False


DEFAULT_RULES = TopicRules()
_cache: dict[tuple[str, str], tuple[dict, TopicRules]] = {}  # (namespace, topic) -> (properties, rules)
_topics: dict[tuple[str, str], object] = {}  # (namespace, topic) -> its PulsarTopic
_CACHE_MAX = 10_000


def configs_of(properties: dict[str, str] | None) -> dict[str, tc.Value]:
    """The typed Kafka configs a topic sets (stored values that no longer parse are skipped)."""
    out = {}
    for name, value in tc.stored_configs(properties).items():
        try:
            out[name] = tc.parse(name, value)
        except tc.InvalidConfig:
            continue
    return out


def rules_for(properties: dict[str, str] | None) -> TopicRules:
    configs = configs_of(properties)
    if not configs:
        return DEFAULT_RULES
    before = configs.get("message.timestamp.before.max.ms")
    return TopicRules(
        compact="compact" in configs.get("cleanup.policy", ()),
        max_message_bytes=configs.get("max.message.bytes"),
        timestamp_after_max_ms=configs.get("message.timestamp.after.max.ms", _DEFAULT_AFTER_MS),
        timestamp_before_max_ms=None if before is None or before >= tc.LONG_MAX // 2 else before,
        log_append_time=configs.get("message.timestamp.type") == "LogAppendTime")


def properties_of(backend, topic: str) -> dict[str, str] | None:
    """The topic's Pulsar properties as this gateway last saw them (None: not looked up lately)."""
    key = (backend.namespace.path, topic)
    pulsar_topic = _topics.get(key)
    if pulsar_topic is None:
        if len(_topics) >= _CACHE_MAX:
            _topics.clear()
        pulsar_topic = _topics[key] = partitioned_topic(backend.namespace, topic)
    return backend.admin.known_properties(pulsar_topic)


def rules_of(backend, topic: str) -> TopicRules:
    properties = properties_of(backend, topic)
    if not properties:
        return DEFAULT_RULES
    key = (backend.namespace.path, topic)
    cached = _cache.get(key)
    if cached is not None and cached[0] is properties:
        return cached[1]
    rules = rules_for(properties)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = (properties, rules)
    return rules
