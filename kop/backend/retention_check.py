"""Which namespaces in use would lose Kafka data: said by ``kop check`` and logged when kop starts (and
when a SASL principal first uses a namespace).

Pulsar deletes a closed ledger that no durable subscription needs unless a retention policy keeps
it; its stock retention (broker ``defaultRetentionTimeInMinutes`` / ``defaultRetentionSizeInMB``,
both 0) keeps nothing. kop gives every topic it creates Kafka's retention as a topic policy
(kafka_topics.py), so those are safe; but a Kafka topic created another way (pulsar-admin, a native
producer's auto-creation, an older kop) lives by its namespace's retention, and there records no
group has consumed vanish at the first ledger rollover. A namespace's effective retention is its
own policy, else the broker's default.
"""

from __future__ import annotations

import logging

from ..mapping import topic_configs as tc
from ..mapping.topics import Namespace
from . import admin as admin_api

log = logging.getLogger(__name__)

_warned: set[str] = set()


def broker_retention(settings: dict[str, str]) -> dict[str, int]:
    return {"retentionTimeInMinutes": int(settings.get("defaultRetentionTimeInMinutes", 0) or 0),
            "retentionSizeInMB": int(settings.get("defaultRetentionSizeInMB", 0) or 0)}


async def dropping_data(admin: admin_api.PulsarAdmin, ns: Namespace, broker_settings: dict[str, str] | None
                        ) -> str | None:
    """A sentence naming ``ns`` when its retention keeps no unconsumed data, else None. Raises
    AdminError when the namespace's policy cannot be read; ``broker_settings`` None: read them."""
    policy = await admin.namespace_policy(ns, "retention")
    where = "its retention policy"
    if not policy:
        if broker_settings is None:
            broker_settings = await admin.runtime_configuration()
        policy, where = broker_retention(broker_settings), "the broker's default retention (no namespace policy)"
    if tc.keeps_data(policy):
        return None
    return (f"namespace {ns.path}: {where} is {policy.get('retentionTimeInMinutes', 0)} min / "
            f"{policy.get('retentionSizeInMB', 0)} MB, so Pulsar deletes closed ledgers no subscription needs: "
            f"Kafka records no group has consumed are lost at the next ledger rollover in topics kop did not "
            f"create (kop gives the topics it creates Kafka's retention, topics.retention_ms). Keep them with "
            f"`pulsar-admin namespaces set-retention {ns.path} --time 7d --size -1`")


async def warn_once(admin: admin_api.PulsarAdmin, ns: Namespace, broker_settings: dict[str, str] | None) -> None:
    """Log the warning for ``ns`` once per process; never raises (it is advice, not a failure)."""
    if ns.path in _warned:
        return
    _warned.add(ns.path)
    try:
        problem = await dropping_data(admin, ns, broker_settings)
    except admin_api.AdminError as exc:
        log.info("namespace %s: its retention could not be read (%s)", ns.path, exc)
        return
    if problem:
        log.warning("%s", problem)
