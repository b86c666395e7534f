"""Kafka topics as kop creates and configures them: a Pulsar partitioned topic, its Kafka configs (as
topic properties) and the Pulsar policies they map to (policies.py), created together, so a topic
never exists without the configs it was created with, nor without Kafka's retention.

Every topic kop creates -- CreateTopics, or Metadata's auto-creation -- gets Kafka's retention as its
own Pulsar retention policy and message TTL (``topics.retention_ms``, 7 days by default) unless it
sets retention.ms / retention.bytes itself or its namespace keeps data by itself. Pulsar's stock
retention is 0: a closed ledger that no durable subscription needs is deleted, so Kafka records no
group has consumed yet (or that no group will ever consume) would be lost at the first ledger
rollover. The TTL is the other half of Kafka's retention: a Kafka group that stops consuming keeps a
Pulsar subscription (the cursor sync), which without a TTL would hold its backlog forever.

Functions here take the backend (kop's own, or a SASL principal's) and raise KafkaError: Pulsar's
admin errors are translated here, as in the rest of backend/.
"""

from __future__ import annotations

import logging

from ..mapping import topic_configs as tc
from ..protocol.errors import ErrorCode, KafkaError
from . import admin as admin_api
from . import policies
from .errors import kafka_error_of

log = logging.getLogger(__name__)


async def create(backend, name: str, partitions: int, values: dict[str, tc.Value]) -> None:
    """Create Kafka topic ``name`` with ``partitions`` and the parsed configs ``values``; the others
    take their defaults. TOPIC_ALREADY_EXISTS if it exists; if Pulsar refuses a config, the topic is
    deleted again and the error names it."""
    await backend.create_topic(name, partitions)
    try:
        await _policies(backend, name, values, set(), creating=True)
    except KafkaError as exc:
        try:
            await backend.delete_topic(name)
        except KafkaError:
            log.warning("topic %s: its configs were refused (%s) and deleting it failed", name, exc)
        raise KafkaError(exc.code, f"Pulsar refused the topic's configs: {exc.message}") from exc


async def describe(backend, name: str) -> dict[str, policies.ConfigEntry]:
    try:
        return await policies.describe(backend, backend.partitioned(name))
    except Exception as exc:
        raise kafka_error_of(exc) from exc


async def alter(backend, name: str, values: dict[str, tc.Value], reset: set[str], validate_only: bool = False) -> None:
    """Set ``values`` (parsed) and return ``reset`` to their defaults, after checking the topic's
    configs as they would be afterwards (Kafka's cross-config rules); nothing more with
    ``validate_only``."""
    try:
        kept = await policies.stored(backend, backend.partitioned(name))
    except Exception as exc:
        raise kafka_error_of(exc) from exc
    after = {key: tc.parse(key, value) for key, value in kept.items() if key not in reset}
    after.update(values)
    try:
        tc.validate_together(after)
    except tc.InvalidConfig as exc:
        raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from exc
    if not validate_only:
        await _policies(backend, name, values, reset, creating=False)


async def _policies(backend, name: str, values: dict[str, tc.Value], reset: set[str], creating: bool) -> None:
    try:
        await policies.apply(backend, backend.partitioned(name), values, reset, creating=creating)
    except admin_api.AdminError as exc:
        if exc.status in (400, 412):  # Pulsar's own rules, e.g. retention size above the backlog quota
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Pulsar refused the policy: {exc}") from exc
        raise kafka_error_of(exc) from exc
    except KafkaError:
        raise
    except Exception as exc:
        raise kafka_error_of(exc) from exc
