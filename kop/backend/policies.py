"""Kafka topic configs kept in Pulsar: the ones with a Pulsar meaning as Pulsar topic policies, all of
them as topic properties (mapping/topic_configs.py has the table; topic_config_specs.py what each
config does in kop).

Every Kafka config a topic sets is stored as the property ``kafka.config.<name>`` of its Pulsar
partitioned topic, in Kafka's canonical form, so DescribeConfigs gives back exactly what was set, as
DYNAMIC_TOPIC_CONFIG; an unset config is DEFAULT_CONFIG with its default. The configs Pulsar can
honour are also applied as topic policies; for those, DescribeConfigs reports what Pulsar has
(a policy changed behind kop's back with pulsar-admin shows as that value), and the default is what
Pulsar applies: the namespace's or broker's value (``?applied=true``), kop's topics.retention_ms
for retention. Topic policies are Pulsar's ``topicLevelPoliciesEnabled`` feature (on by default
since Pulsar 3); they take effect asynchronously, within about a second.

REST calls (``{t}`` = ``persistent/<tenant>/<ns>/<topic>``, the partitioned topic):
``GET|PUT|DELETE {t}/properties`` (DELETE takes ``?key=``), ``GET|POST|DELETE {t}/retention``
({"retentionTimeInMinutes", "retentionSizeInMB"}), ``{t}/maxMessageSize`` (bytes),
``{t}/compactionThreshold`` (bytes; 0 disables compaction), ``POST {t}/messageTTL?messageTTL=<s>``
(retention.ms's TTL), and ``GET namespaces/<tenant>/<ns>/retention`` for the namespace level.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..mapping import topic_configs as tc
from ..mapping.topic_config_specs import SPECS, Spec
from ..mapping.topics import PulsarTopic

TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5  # Kafka's ConfigSource ids (1: DYNAMIC_TOPIC_CONFIG)
MAPPED = ("retention.ms", "retention.bytes", "max.message.bytes", "cleanup.policy")


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str
    source: int

    @property
    def is_default(self) -> bool:
        return self.source == DEFAULT_CONFIG

    @property
    def spec(self) -> Spec:
        return SPECS[self.name]


async def stored(backend, topic: PulsarTopic) -> dict[str, str]:
    """The Kafka configs the topic sets (canonical strings)."""
    return tc.stored_configs(await backend.admin.topic_properties(topic))


async def describe(backend, topic: PulsarTopic) -> dict[str, ConfigEntry]:
    """Every Kafka topic config but the internal ones, with its value and source."""
    admin = backend.admin
    calls = [admin.topic_properties(topic)]
    for policy in ("retention", "maxMessageSize", "compactionThreshold"):
        calls += [admin.topic_policy(topic, policy), admin.topic_policy(topic, policy, applied=True)]
    properties, retention, applied_retention, own_size, applied_size, own_threshold, applied_threshold = \
        await asyncio.gather(*calls)
    kept = tc.stored_configs(properties)
    out = {name: ConfigEntry(name, kept[name], TOPIC_CONFIG) if name in kept else
           ConfigEntry(name, spec.default or "", DEFAULT_CONFIG)
           for name, spec in sorted(SPECS.items()) if not spec.internal}

    pulsar = tc.retention_from_pulsar(retention or applied_retention or _broker_retention(backend))
    default = default_retention(backend)  # kop's own default is no choice of the topic's
    for index, (name, field) in enumerate(_RETENTION_FIELDS):
        own = bool(retention) and retention.get(field) != default[field]
        out[name] = _mapped(name, kept, str(pulsar[index]), own,
                            lambda v, i=index, f=field: _retention_field(i, int(v))[f],
                            (retention or {}).get(field))
    applied = own_size if own_size is not None else applied_size
    if applied is None:
        applied = int(backend.broker_settings().get("maxMessageSize", 5 * 1024 * 1024))
    out["max.message.bytes"] = _mapped("max.message.bytes", kept, str(applied), own_size is not None, int, own_size)
    applied = own_threshold if own_threshold is not None else applied_threshold
    out["cleanup.policy"] = _mapped("cleanup.policy", kept, tc.cleanup_policy_of(applied), own_threshold is not None,
                                    lambda v: "compact" in v.split(","),
                                    None if own_threshold is None else own_threshold > 0)
    return out


def _mapped(name: str, kept: dict[str, str], pulsar_value: str, topic_level: bool, to_pulsar, own) -> ConfigEntry:
    """A mapped config: the stored Kafka value while Pulsar still has what it maps to, else Pulsar's."""
    if name in kept and (own is None or to_pulsar(kept[name]) == own):
        return ConfigEntry(name, kept[name], TOPIC_CONFIG)
    return ConfigEntry(name, pulsar_value, TOPIC_CONFIG if topic_level else DEFAULT_CONFIG)


_RETENTION_FIELDS = (("retention.ms", "retentionTimeInMinutes"), ("retention.bytes", "retentionSizeInMB"))


def _retention_field(index: int, value: int) -> dict[str, int]:
    return tc.retention_to_pulsar(value, -1) if index == 0 else tc.retention_to_pulsar(-1, value)


def default_retention(backend) -> dict[str, int]:
    """The Pulsar retention policy of Kafka's default retention (topics.retention_ms, no size limit)."""
    return tc.retention_to_pulsar(backend.config.topics.retention_ms, -1)


def _broker_retention(backend) -> dict:
    s = backend.broker_settings()
    return {"retentionTimeInMinutes": int(s.get("defaultRetentionTimeInMinutes", 0)),
            "retentionSizeInMB": int(s.get("defaultRetentionSizeInMB", 0))}


async def apply(backend, topic: PulsarTopic, values: dict[str, tc.Value], reset: set[str],
                creating: bool = False) -> None:
    """Set ``values`` (parsed by topic_configs.parse) and return ``reset`` to their defaults;
    ``creating``: the topic is new, so the unset configs get their defaults too. Pulsar's policies
    first: if Pulsar refuses one (AdminError), no property has changed."""
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
    if values:
        await admin.update_topic_properties(topic, {tc.PROPERTY_PREFIX + name: tc.render(name, value)
                                                    for name, value in values.items()})
    kept = tc.stored_configs(admin.known_properties(topic)) if not creating else {}
    for name in sorted(reset & set(kept)):
        await admin.remove_topic_property(topic, tc.PROPERTY_PREFIX + name)
    await admin.topic_properties(topic)  # what the hot path sees (topic_settings.py), at once


async def _apply_retention(backend, topic: PulsarTopic, values: dict[str, tc.Value], reset: set[str],
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
