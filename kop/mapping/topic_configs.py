"""Kafka topic configs that map onto Pulsar topic policies: the table, value checks and conversions.
Pure: the backend (backend/policies.py) reads and writes the policies; handlers use this to check.

| Kafka config        | Pulsar topic policy                          | notes                                   |
|---------------------|----------------------------------------------|-----------------------------------------|
| retention.ms        | retention.retentionTimeInMinutes             | rounded up to whole minutes; -1 forever |
| retention.bytes     | retention.retentionSizeInMB                  | rounded up to whole MiB; -1 unlimited   |
| max.message.bytes   | maxMessageSize                               | bytes of one Pulsar message: one Kafka  |
|                     |                                              | batch (kafka format) or record (pulsar) |
| cleanup.policy      | compactionThreshold                          | compact: Pulsar compacts the topic once |
|                     |                                              | COMPACTION_THRESHOLD_BYTES accumulate;  |
|                     |                                              | delete: no compaction                   |

What differs from Kafka, and is said wherever these configs are described (docs, DescribeConfigs
documentation field):

- Pulsar's retention keeps *acknowledged* data for the given time/size; data a subscription (a
  Kafka group's cursor, kop's or a native one) has not acknowledged is kept regardless. Kafka deletes
  by time/size whoever has read what. Retention applies per partition in both.
- Pulsar requires a retention size above the namespace's backlog quota (10 GiB on a stock
  standalone): a smaller ``retention.bytes`` is refused with INVALID_CONFIG quoting Pulsar.
- ``cleanup.policy=compact`` makes Pulsar compact the topic, but kop's Fetch reads the full log, not
  Pulsar's compacted view: Kafka consumers still see every record until retention removes it.
  ``compact,delete`` is the same as ``compact`` (Pulsar's retention always applies).
- Every other Kafka topic config is refused with INVALID_CONFIG naming it, never silently ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MS_PER_MINUTE = 60_000
BYTES_PER_MB = 1 << 20
# Backlog (bytes) after which Pulsar compacts a topic whose cleanup.policy includes compact.
COMPACTION_THRESHOLD_BYTES = 100 * BYTES_PER_MB
# Kafka's ConfigType ids (DescribeConfigs v3+).
LONG, INT, LIST = 5, 3, 7


class InvalidConfig(ValueError):
    """The message names the config and says why (sent to the client as INVALID_CONFIG)."""


@dataclass(frozen=True)
class ConfigSpec:
    name: str
    config_type: int
    documentation: str


SPECS: dict[str, ConfigSpec] = {s.name: s for s in (
    ConfigSpec("retention.ms", LONG, "Pulsar retention time of acknowledged data (whole minutes); -1: forever."),
    ConfigSpec("retention.bytes", LONG, "Pulsar retention size of acknowledged data per partition (whole MiB); "
                                        "-1: unlimited."),
    ConfigSpec("max.message.bytes", INT, "Pulsar maxMessageSize: largest Pulsar message, i.e. Kafka batch "
                                         "(kafka entry format) or record (pulsar entry format)."),
    ConfigSpec("cleanup.policy", LIST, "compact: Pulsar compacts the topic (kop's Fetch still reads the full "
                                       "log); delete: no compaction. Pulsar retention applies either way."),
)}


def check_name(name: str) -> ConfigSpec:
    spec = SPECS.get(name)
    if spec is None:
        raise InvalidConfig(f"{name}: kop maps only {', '.join(sorted(SPECS))} onto Pulsar policies")
    return spec


def parse(name: str, value: str | None) -> int | frozenset[str]:
    """A Kafka config value as kop stores it; InvalidConfig if the name or the value is not acceptable."""
    check_name(name)
    if value is None:
        raise InvalidConfig(f"{name}: a value is required")
    if name == "cleanup.policy":
        parts = frozenset(p.strip() for p in value.split(",") if p.strip())
        if not parts or not parts <= {"delete", "compact"}:
            raise InvalidConfig(f"cleanup.policy: {value!r} is not a list of delete and compact")
        return parts
    try:
        number = int(value.strip())
    except ValueError:
        raise InvalidConfig(f"{name}: {value!r} is not an integer") from None
    if name in ("retention.ms", "retention.bytes") and number < -1:
        raise InvalidConfig(f"{name}: {number} is below -1")
    if name == "max.message.bytes" and not 0 < number <= 2**31 - 1:
        raise InvalidConfig(f"{name}: {number} is outside 1..2147483647")
    return number


def retention_to_pulsar(ms: int, size_bytes: int) -> dict[str, int]:
    minutes = -1 if ms < 0 else math.ceil(ms / MS_PER_MINUTE)
    mb = -1 if size_bytes < 0 else math.ceil(size_bytes / BYTES_PER_MB)
    return {"retentionTimeInMinutes": minutes, "retentionSizeInMB": mb}


def retention_from_pulsar(policy: dict | None) -> tuple[int, int]:
    """(retention.ms, retention.bytes) of a Pulsar RetentionPolicies object."""
    policy = policy or {}
    minutes = int(policy.get("retentionTimeInMinutes", 0))
    mb = int(policy.get("retentionSizeInMB", 0))
    return (-1 if minutes < 0 else minutes * MS_PER_MINUTE), (-1 if mb < 0 else mb * BYTES_PER_MB)


def ttl_seconds(retention_ms: int) -> int:
    """Pulsar's message TTL for a Kafka retention.ms: what no subscription acknowledged within it is
    acknowledged for them (expired), so an abandoned group holds nothing longer than Kafka would.
    0 (Pulsar: no TTL) for -1; at least 1 s, since 0 would mean "never" to Pulsar."""
    if retention_ms < 0:
        return 0
    return min(max(1, math.ceil(retention_ms / 1000)), 2**31 - 1)


def keeps_data(policy: dict | None) -> bool:
    """Does a Pulsar retention policy keep data no subscription needs? Not when it is absent or its
    time or size is 0: Pulsar's default, which deletes each closed ledger no cursor holds."""
    if not policy:
        return False
    return int(policy.get("retentionTimeInMinutes", 0)) != 0 and int(policy.get("retentionSizeInMB", 0)) != 0


def cleanup_policy_of(compaction_threshold: int | None) -> str:
    return "compact" if compaction_threshold and compaction_threshold > 0 else "delete"


def render(name: str, value: int | frozenset[str]) -> str:
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return str(value)
