"""Kafka topic configs: parsing and validation exactly as a Kafka 4.1 broker does them, the canonical
value kop stores, and the conversions onto Pulsar policies. Pure: the backend (backend/policies.py)
reads and writes Pulsar; handlers use this to check requests.

Every topic config Kafka 4.1 accepts is accepted (mapping/topic_config_specs.py lists them, with
what kop does with each); a name Kafka does not know gets INVALID_CONFIG "Unknown topic config
name: <name>", a bad value Kafka's own message ("Invalid value <v> for configuration <name>: Value
must be at least 0", ...). Values are parsed as Kafka's ConfigDef parses them (trimmed; BOOLEAN
true/false in any case; INT/LONG decimal within range; LIST comma-separated) and stored in the form
Kafka's DescribeConfigs shows them (``" compact , delete "`` -> ``compact,delete``).

| Kafka config      | Pulsar topic policy                              | notes                                 |
|-------------------|--------------------------------------------------|---------------------------------------|
| retention.ms      | retention.retentionTimeInMinutes, messageTTL     | minutes rounded up; TTL in seconds;   |
|                   |                                                  | -1 forever / no TTL                   |
| retention.bytes   | retention.retentionSizeInMB                      | rounded up to whole MiB; -1 unlimited |
| max.message.bytes | maxMessageSize                                   | also checked per batch by kop         |
| cleanup.policy    | compactionThreshold                              | compact: Pulsar compacts once         |
|                   |                                                  | COMPACTION_THRESHOLD_BYTES accumulate |

Differences from Kafka, said wherever these configs are described:

- Pulsar requires a retention size above the namespace's backlog quota (10 GiB on a stock
  standalone): a smaller ``retention.bytes`` is refused with INVALID_CONFIG quoting Pulsar.
- ``cleanup.policy=compact`` makes Pulsar compact the topic, but kop's Fetch reads the full log, not
  Pulsar's compacted view: Kafka consumers see every record until retention removes it.
  ``compact,delete`` is the same as ``compact`` (Pulsar's retention always applies).
"""

from __future__ import annotations

import decimal
import math
import re

from .topic_config_specs import (BOOLEAN, DOUBLE, INT, INT_MAX, INT_MIN, LIST, LONG, LONG_MAX, LONG_MIN, SPECS,
                                 STRING, Spec)

MS_PER_MINUTE = 60_000
BYTES_PER_MB = 1 << 20
# Backlog (bytes) after which Pulsar compacts a topic whose cleanup.policy includes compact.
COMPACTION_THRESHOLD_BYTES = 100 * BYTES_PER_MB
# Pulsar topic properties holding the Kafka configs a topic sets: "kafka.config.<name>" -> value.
PROPERTY_PREFIX = "kafka.config."

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_LIST_SPLIT = re.compile(r"\s*,\s*")
_REPLICA = re.compile(r"([0-9]+:[0-9]+)?")

Value = bool | int | float | str | tuple[str, ...]


class InvalidConfig(ValueError):
    """The message names the config and says why (sent to the client as INVALID_CONFIG)."""


def check_name(name: str) -> Spec:
    spec = SPECS.get(name)
    if spec is None:
        raise InvalidConfig(f"Unknown topic config name: {name}")
    return spec


def _invalid(name: str, value: object, why: str) -> InvalidConfig:
    return InvalidConfig(f"Invalid value {value} for configuration {name}: {why}")


def parse(name: str, value: str | None) -> Value:
    """A Kafka topic config value, typed and validated as Kafka does it; InvalidConfig otherwise."""
    spec = check_name(name)
    if value is None:
        raise InvalidConfig(f"Null value not supported for topic configs: {name}")
    text = value.strip()
    kind = spec.config_type
    if kind == BOOLEAN:
        if text.lower() not in ("true", "false"):
            raise _invalid(name, value, "Expected value to be either true or false")
        parsed: Value = text.lower() == "true"
    elif kind in (INT, LONG):
        low, high = (INT_MIN, INT_MAX) if kind == INT else (LONG_MIN, LONG_MAX)
        if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
            raise _invalid(name, value, f"Not a number of type {'INT' if kind == INT else 'LONG'}")
        parsed = int(text)
    elif kind == DOUBLE:
        if not _DECIMAL.fullmatch(text):
            raise _invalid(name, value, "Not a number of type DOUBLE")
        parsed = float(text)
    elif kind == LIST:
        parsed = tuple(_LIST_SPLIT.split(text)) if text else ()
    else:
        parsed = text
    _validate(spec, parsed, value)
    return parsed


def _validate(spec: Spec, parsed: Value, raw: str) -> None:
    v = spec.validator
    if v is None:
        return
    name = spec.name
    if v.rule == "gzip_level":
        if not (1 <= parsed <= 9 or parsed == -1):
            raise _invalid(name, parsed, "Value must be between 1 and 9 or equal to -1")
    elif v.rule == "replicas":
        items = [item.strip() for item in parsed]
        if not (items == ["*"] or all(_REPLICA.fullmatch(item) for item in items)):
            raise _invalid(name, "[" + ", ".join(parsed) + "]", f"{name} must be the literal '*' or a list of "
                           "replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")
    elif v.one_of:
        for item in (parsed if spec.config_type == LIST else (parsed,)):
            if item not in v.one_of:
                raise _invalid(name, item, "String must be one of: " + ", ".join(v.one_of))
    else:
        if v.low is not None and parsed < v.low:
            raise _invalid(name, _shown(spec, parsed), f"Value must be at least {_number(v.low)}")
        if v.high is not None and parsed > v.high:
            raise _invalid(name, _shown(spec, parsed), f"Value must be no more than {_number(v.high)}")


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _shown(spec: Spec, parsed: Value) -> str:
    return render(spec.name, parsed)


def render(name: str, parsed: Value) -> str:
    """The value as Kafka's DescribeConfigs shows it."""
    kind = SPECS[name].config_type
    if kind == BOOLEAN:
        return "true" if parsed else "false"
    if kind == LIST:
        return ",".join(parsed)
    if kind == DOUBLE:
        return java_double(float(parsed))
    return str(parsed)


def canonical(name: str, value: str | None) -> str:
    return render(name, parse(name, value))


def java_double(x: float) -> str:
    """Java's Double.toString (what Kafka shows for DOUBLE configs): 0.5, 1.0, 1.0E-4, 1.0E7."""
    if math.isnan(x) or math.isinf(x):
        return {True: "NaN"}.get(math.isnan(x), "Infinity" if x > 0 else "-Infinity")
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    if 1e-3 <= abs(x) < 1e7:
        text = repr(x)
        return text if "e" not in text else format(decimal.Decimal(text), "f")
    sign, digits, exponent = decimal.Decimal(repr(x)).as_tuple()
    mantissa = "".join(map(str, digits)).rstrip("0") or "0"
    power = exponent + len(digits) - 1
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{power}"


def default(name: str) -> Value | None:
    spec = SPECS[name]
    return None if spec.default is None else parse(name, spec.default)


def validate_together(configs: dict[str, Value]) -> None:
    """Rules across configs, on the topic's configs after the change (defaults filled in)."""
    low = configs.get("min.compaction.lag.ms", default("min.compaction.lag.ms"))
    high = configs.get("max.compaction.lag.ms", default("max.compaction.lag.ms"))
    if low > high:
        raise InvalidConfig(f"conflict topic config setting min.compaction.lag.ms ({low}) > "
                            f"max.compaction.lag.ms ({high})")
    if configs.get("remote.storage.enable"):
        raise InvalidConfig("Tiered Storage functionality is disabled in the broker. Topic cannot be configured "
                            "with remote log storage.")


def stored_configs(properties: dict[str, str] | None) -> dict[str, str]:
    """The Kafka configs a topic sets, from its Pulsar topic properties."""
    return {key[len(PROPERTY_PREFIX):]: value for key, value in (properties or {}).items()
            if key.startswith(PROPERTY_PREFIX) and key[len(PROPERTY_PREFIX):] in SPECS}


# -- Pulsar policies ---------------------------------------------------------------------------------

def retention_to_pulsar(ms: int, size_bytes: int) -> dict[str, int]:
    """Pulsar refuses a policy with one limit 0 and the other not: a 0 in Kafka (keep nothing no
    subscription needs) is Pulsar's "no retention", both limits 0."""
    minutes = -1 if ms < 0 else math.ceil(ms / MS_PER_MINUTE)
    mb = -1 if size_bytes < 0 else math.ceil(size_bytes / BYTES_PER_MB)
    if minutes == 0 or mb == 0:
        minutes = mb = 0
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


__all__ = ["BOOLEAN", "DOUBLE", "INT", "LIST", "LONG", "STRING", "SPECS", "InvalidConfig", "check_name", "parse",
           "render", "canonical", "default", "validate_together", "stored_configs"]
