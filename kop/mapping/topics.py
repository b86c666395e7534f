"""Kafka topic names <-> Pulsar topic names (pure).

Kafka topic ``t``, partition ``p`` lives at ``persistent://<tenant>/<namespace>/t-partition-p``, where
``persistent://<tenant>/<namespace>/t`` is a Pulsar *partitioned* topic with as many partitions as the
Kafka topic. Tenant and namespace come from the configuration (later: from the SASL principal).

Kafka's own topic-name rules apply (1..249 characters of ``[a-zA-Z0-9._-]``); they are a subset of
what Pulsar accepts, so every legal Kafka name maps to a legal Pulsar name and back without escaping.
Names that Kafka clients may send but that kop never maps (``__consumer_offsets`` and the like, and
Pulsar-internal topics such as ``__change_events``) are reported as not found / hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LEGAL = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
PARTITION_SUFFIX = "-partition-"
# Pulsar's own system topics in every namespace; never shown to Kafka clients.
PULSAR_INTERNAL = ("__change_events", "__transaction_buffer_snapshot", "__transaction_pending_ack")


class InvalidTopicName(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Namespace:
    tenant: str
    namespace: str

    @property
    def path(self) -> str:
        return f"{self.tenant}/{self.namespace}"


@dataclass(frozen=True, slots=True)
class KafkaTopic:
    name: str

    def __post_init__(self) -> None:
        check_kafka_name(self.name)


@dataclass(frozen=True, slots=True)
class PulsarTopic:
    """A fully qualified persistent Pulsar topic (the partitioned topic, or one of its partitions)."""
    namespace: Namespace
    local_name: str

    @property
    def url(self) -> str:
        return f"persistent://{self.namespace.path}/{self.local_name}"

    @property
    def rest_path(self) -> str:
        """The path segment used by Pulsar's admin REST API: ``tenant/namespace/topic``."""
        return f"{self.namespace.path}/{self.local_name}"


def check_kafka_name(name: str) -> None:
    if not _LEGAL.match(name) or name in (".", ".."):
        raise InvalidTopicName(f"illegal Kafka topic name {name!r}: 1-249 characters of [a-zA-Z0-9._-]")
    if PARTITION_SUFFIX in name:
        # `t-partition-0` as a Kafka topic would collide with partition 0 of Kafka topic `t`.
        raise InvalidTopicName(f"Kafka topic name {name!r} contains {PARTITION_SUFFIX!r}, reserved by Pulsar")


def is_hidden(name: str) -> bool:
    return name in PULSAR_INTERNAL or name.startswith("__")


def partitioned_topic(ns: Namespace, topic: str) -> PulsarTopic:
    check_kafka_name(topic)
    return PulsarTopic(ns, topic)


def partition_topic(ns: Namespace, topic: str, partition: int) -> PulsarTopic:
    check_kafka_name(topic)
    if partition < 0:
        raise InvalidTopicName(f"negative partition {partition}")
    return PulsarTopic(ns, f"{topic}{PARTITION_SUFFIX}{partition}")


def kafka_name_of(pulsar_name: str) -> tuple[str, int] | None:
    """(Kafka topic, partition) for a Pulsar partition's local or full name, or None if not one."""
    local = pulsar_name.rsplit("/", 1)[-1]
    base, sep, index = local.rpartition(PARTITION_SUFFIX)
    if not sep or not index.isdigit():
        return None
    return base, int(index)
