"""Kafka topic configs read from and written to Pulsar topic policies (the mapping: mapping/topic_configs.py).

Pulsar keeps a policy at three levels: the topic (what Kafka's per-topic configs become), the
namespace, and the broker's defaults. DescribeConfigs reports a config as TOPIC_CONFIG when the topic
has its own policy, else as DEFAULT_CONFIG with the value in effect (Pulsar's ``?applied=true``,
and the broker's ``maxMessageSize`` when no level sets one). Topic policies are Pulsar's
``topicLevelPoliciesEnabled`` feature (on by default since Pulsar 3); they take effect
asynchronously, within about a second.

REST calls (``{t}`` = ``persistent/<tenant>/<ns>/<topic>``, the partitioned topic):
``GET|POST|DELETE {t}/retention`` ({"retentionTimeInMinutes", "retentionSizeInMB"}),
``{t}/maxMessageSize`` (bytes), ``{t}/compactionThreshold`` (bytes; 0 disables compaction),
``POST {t}/messageTTL?messageTTL=<seconds>`` (retention.ms's TTL), and
``GET namespaces/<tenant>/<ns>/retention`` for the namespace level.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..mapping import topic_configs as tc
from ..mapping.topics import PulsarTopic

TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5  # Kafka's ConfigSource ids


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str
    source: int

    @property
    def is_default(self) -> bool:
        return self.source == DEFAULT_CONFIG


async def describe(backend, topic: PulsarTopic) -> dict[str, ConfigEntry]:
    admin = backend.admin
    retention = await admin.topic_policy(topic, "retention")
    applied_retention = await admin.topic_policy(topic, "retention", applied=True)
    ms, size = tc.retention_from_pulsar(retention or applied_retention or _broker_retention(backend))
    # kop's own default (topics.retention_ms, given to the topics it creates) is not the topic's choice
    source = TOPIC_CONFIG if retention and retention != default_retention(backend) else DEFAULT_CONFIG
    out = {"retention.ms": ConfigEntry("retention.ms", str(ms), source),
           "retention.bytes": ConfigEntry("retention.bytes", str(size), source)}
    own = await admin.topic_policy(topic, "maxMessageSize")
    applied = own if own is not None else await admin.topic_policy(topic, "maxMessageSize", applied=True)
    if applied is None:
        applied = int(backend.broker_settings().get("maxMessageSize", 5 * 1024 * 1024))
    out["max.message.bytes"] = ConfigEntry("max.message.bytes", str(applied),
                                           TOPIC_CONFIG if own is not None else DEFAULT_CONFIG)
    own = await admin.topic_policy(topic, "compactionThreshold")
    applied = own if own is not None else await admin.topic_policy(topic, "compactionThreshold", applied=True)
    out["cleanup.policy"] = ConfigEntry("cleanup.policy", tc.cleanup_policy_of(applied),
                                        TOPIC_CONFIG if own is not None else DEFAULT_CONFIG)
    return out


def default_retention(backend) -> dict[str, int]:
    """The Pulsar retention policy of Kafka's default retention (topics.retention_ms, no size limit)."""
    return tc.retention_to_pulsar(backend.config.topics.retention_ms, -1)


def _broker_retention(backend) -> dict:
    s = backend.broker_settings()
    return {"retentionTimeInMinutes": int(s.get("defaultRetentionTimeInMinutes", 0)),
            "retentionSizeInMB": int(s.get("defaultRetentionSizeInMB", 0))}


async def apply(backend, topic: PulsarTopic, values: dict[str, object], reset: set[str],
                creating: bool = False) -> None:
    """Set ``values`` (parsed by topic_configs.parse) and return ``reset`` to their defaults;
    ``creating``: the topic is new, so the unset configs get their defaults too."""
    admin = backend.admin
    if creating or {"retention.ms", "retention.bytes"} & (set(values) | reset):
        await _apply_retention(backend, topic, values, reset, creating)
    if "max.message.bytes" in values:
        await admin.set_topic_policy(topic, "maxMessageSize", int(values["max.message.bytes"]))
    elif "max.message.bytes" in reset:
        await admin.remove_topic_policy(topic, "maxMessageSize")
    if "cleanup.policy" in values:
        threshold = tc.COMPACTION_THRESHOLD_BYTES if "compact" in values["cleanup.policy"] else 0
        await admin.set_topic_policy(topic, "compactionThreshold", threshold)
    elif "cleanup.policy" in reset:
        await admin.remove_topic_policy(topic, "compactionThreshold")


async def _apply_retention(backend, topic: PulsarTopic, values: dict[str, object], reset: set[str],
                           creating: bool) -> None:
    """retention.ms and retention.bytes -> the topic's Pulsar retention policy and message TTL.

    A config not given (or reset) takes its default: the namespace's retention when that keeps data
    by itself (then the topic gets no policy of its own), else Kafka's (topics.retention_ms, no size
    limit): never Pulsar's stock "retention 0", which would delete unconsumed Kafka data."""
    admin = backend.admin
    current = None if creating else await admin.topic_policy(topic, "retention")
    kept = tc.retention_from_pulsar(current) if current else None
    explicit: list[int | None] = []
    for index, name in enumerate(("retention.ms", "retention.bytes")):
        if name in values:
            explicit.append(int(values[name]))
        elif name in reset or kept is None or current == default_retention(backend):
            explicit.append(None)
        else:
            explicit.append(kept[index])
    ns_policy = await admin.namespace_policy(topic.namespace, "retention")
    if tc.keeps_data(ns_policy):
        if explicit == [None, None]:
            if current:
                await admin.remove_topic_policy(topic, "retention")
                await admin.remove_topic_policy(topic, "messageTTL")
            return
        fallback = tc.retention_from_pulsar(ns_policy)
    else:
        fallback = (backend.config.topics.retention_ms, -1)
    ms = explicit[0] if explicit[0] is not None else fallback[0]
    size = explicit[1] if explicit[1] is not None else fallback[1]
    await admin.set_topic_policy(topic, "retention", tc.retention_to_pulsar(ms, size))
    await admin.set_message_ttl(topic, tc.ttl_seconds(ms))
