"""Pulsar's admin REST API, asynchronously (httpx): topics, partitions, positions, broker settings.

Only this module and backend/pulsar.py talk to Pulsar. HTTP failures become :class:`AdminError`
subclasses here; backend/pulsar.py turns those into Kafka error codes.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import httpx

from ..mapping.topics import Namespace, PulsarTopic
from .convert import RECORDS

log = logging.getLogger(__name__)

PROPERTIES_SEEN_MAX = 10_000  # topics whose properties are remembered (as kop's partition-count cache)


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Pulsar admin API unreachable: {message}" if status == 0
                         else f"Pulsar admin API answered {status}: {message}")
        self.status = status


class NotFound(AdminError):
    pass


class Conflict(AdminError):
    pass


class Unreachable(AdminError):
    pass


class Denied(AdminError):
    """401 (the token is not accepted) or 403 (its role may not do this)."""


class PulsarAdmin:
    def __init__(self, base_url: str, auth_token: str = "", timeout_s: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
        # Partitioned topics' properties from their last lookup, by rest path (note_properties).
        self.properties_seen: dict[str, dict[str, str]] = {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/admin/v2/", headers=headers,
                                       timeout=timeout_s, follow_redirects=True)
        # Redirects: in a Pulsar cluster a topic's stats are served by the broker owning it (307).

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unreachable(0, f"{method} {path}: {exc!r}") from exc
        if response.status_code >= 400:
            try:
                reason = response.json().get("reason", response.text)
            except (ValueError, AttributeError):
                reason = response.text
            cls = {401: Denied, 403: Denied, 404: NotFound, 409: Conflict}.get(response.status_code, AdminError)
            raise cls(response.status_code, f"{method} {path}: {reason}")
        if not response.content:
            return None
        try:
            return response.json()
        except json.JSONDecodeError:
            return response.text

    # -- topics -------------------------------------------------------------------------------

    async def partition_count(self, topic: PulsarTopic) -> int:
        """Partitions of a partitioned topic; 0 when it does not exist (or is not partitioned).

        Pulsar's answer also carries the topic's properties: they are remembered
        (:meth:`known_properties`), so the Kafka configs kept there (backend/topic_settings.py) are
        as fresh as kop's partition counts without a call of their own."""
        try:
            meta = await self._call("GET", f"persistent/{topic.rest_path}/partitions",
                                    params={"checkAllowAutoCreation": "false"})
        except NotFound:  # Pulsar 4 answers 404 where older versions answered {"partitions": 0}
            self.properties_seen.pop(topic.rest_path, None)
            return 0
        count = int(meta.get("partitions", 0))
        self.note_properties(topic, meta.get("properties") or {} if count else None)
        return count

    def note_properties(self, topic: PulsarTopic, properties: dict[str, str] | None) -> None:
        """Remember a partitioned topic's properties (None: it does not exist); bounded, oldest first out."""
        seen = self.properties_seen
        seen.pop(topic.rest_path, None)
        if properties is None:
            return
        seen[topic.rest_path] = properties
        if len(seen) > PROPERTIES_SEEN_MAX:
            del seen[next(iter(seen))]

    def known_properties(self, topic: PulsarTopic) -> dict[str, str] | None:
        """The properties last seen for a partitioned topic, or None if it was not looked up lately."""
        return self.properties_seen.get(topic.rest_path)

    async def topic_properties(self, topic: PulsarTopic) -> dict[str, str]:
        properties = dict(await self._call("GET", f"persistent/{topic.rest_path}/properties") or {})
        self.note_properties(topic, properties)
        return properties

    async def update_topic_properties(self, topic: PulsarTopic, properties: dict[str, str]) -> None:
        """Set (add or replace) properties of a partitioned topic; the others stay."""
        await self._call("PUT", f"persistent/{topic.rest_path}/properties", json=properties)

    async def remove_topic_property(self, topic: PulsarTopic, key: str) -> None:
        await self._call("DELETE", f"persistent/{topic.rest_path}/properties", params={"key": key})

    async def create_partitioned_topic(self, topic: PulsarTopic, partitions: int) -> None:
        await self._call("PUT", f"persistent/{topic.rest_path}/partitions", json=partitions)

    async def delete_partitioned_topic(self, topic: PulsarTopic) -> None:
        await self._call("DELETE", f"persistent/{topic.rest_path}/partitions", params={"force": "true"})

    async def create_topic(self, topic: PulsarTopic) -> None:
        """A non-partitioned topic (409 Conflict when it exists)."""
        await self._call("PUT", f"persistent/{topic.rest_path}")

    async def publishers(self, topic: PulsarTopic) -> list[dict[str, Any]]:
        """The producers connected to a non-partitioned topic (or one partition): each a dict with
        ``producerName``, ``accessMode``, ``metadata`` (the producer's properties), ``address``..."""
        return list((await self._call("GET", f"persistent/{topic.rest_path}/stats")).get("publishers") or [])

    async def partition_publishers(self, topic: PulsarTopic) -> dict[int, list[dict[str, Any]]]:
        """The producers of every partition of a partitioned topic, by partition index."""
        stats = await self._call("GET", f"persistent/{topic.rest_path}/partitioned-stats",
                                 params={"perPartition": "true"})
        out: dict[int, list[dict[str, Any]]] = {}
        for name, partition_stats in (stats.get("partitions") or {}).items():
            index = name.rsplit("-partition-", 1)[-1]
            if index.isdigit():
                out[int(index)] = list(partition_stats.get("publishers") or [])
        return out

    async def update_partitions(self, topic: PulsarTopic, partitions: int) -> None:
        """Grow a partitioned topic (Pulsar refuses to shrink one)."""
        await self._call("POST", f"persistent/{topic.rest_path}/partitions", json=partitions)

    # -- policies (topic level; namespace level for reading defaults) -----------------------------

    async def topic_policy(self, topic: PulsarTopic, policy: str, applied: bool = False) -> Any:
        """The topic's own value of ``policy`` (None when unset), or with ``applied`` the one in effect."""
        return await self._call("GET", f"persistent/{topic.rest_path}/{policy}",
                                params={"applied": "true"} if applied else None)

    async def set_topic_policy(self, topic: PulsarTopic, policy: str, value: Any) -> None:
        await self._call("POST", f"persistent/{topic.rest_path}/{policy}", json=value)

    async def remove_topic_policy(self, topic: PulsarTopic, policy: str) -> None:
        await self._call("DELETE", f"persistent/{topic.rest_path}/{policy}")

    async def set_message_ttl(self, topic: PulsarTopic, seconds: int) -> None:
        """The topic's message TTL policy (a query parameter: Pulsar 4.0 ignores a JSON body here)."""
        await self._call("POST", f"persistent/{topic.rest_path}/messageTTL", params={"messageTTL": str(seconds)})

    async def namespace_policy(self, ns: Namespace, policy: str) -> Any:
        return await self._call("GET", f"namespaces/{ns.path}/{policy}")

    async def list_partitioned_topics(self, ns: Namespace) -> list[str]:
        return list(await self._call("GET", f"persistent/{ns.path}/partitioned"))

    async def last_message_id(self, partition: PulsarTopic) -> dict[str, int]:
        """{"ledgerId", "entryId", "batchIndex"} of the last entry (entryId -1 when none)."""
        return await self._call("GET", f"persistent/{partition.rest_path}/lastMessageId")

    async def message_id_at(self, partition: PulsarTopic, timestamp_ms: int) -> tuple[int, int]:
        """(ledger, entry) of the first entry published at or after ``timestamp_ms``: Pulsar's own
        search of its ledgers. Past the last entry it names the position after it."""
        found = await self._call("GET", f"persistent/{partition.rest_path}/messageid/{int(timestamp_ms)}")
        return int(found["ledgerId"]), int(found["entryId"])

    async def internal_stats(self, partition: PulsarTopic) -> dict[str, Any]:
        return await self._call("GET", f"persistent/{partition.rest_path}/internalStats")

    async def partition_stats(self, partition: PulsarTopic, precise_backlog: bool = False) -> dict[str, Any]:
        """Pulsar's topic stats; ``precise_backlog`` counts the messages inside batch entries (the
        broker reads the backlog to do so) instead of counting entries."""
        return await self._call("GET", f"persistent/{partition.rest_path}/stats",
                                params={"getPreciseBacklog": str(precise_backlog).lower()})

    async def unload(self, partition: PulsarTopic) -> None:
        await self._call("PUT", f"persistent/{partition.rest_path}/unload")

    # -- subscriptions and entries -------------------------------------------------------------

    def _subscription_path(self, partition: PulsarTopic, subscription: str) -> str:
        return f"persistent/{partition.rest_path}/subscription/{quote(subscription, safe='')}"

    async def reset_subscription(self, partition: PulsarTopic, subscription: str, ledger_id: int,
                                 entry_id: int) -> None:
        """Move an existing durable subscription's read position to (ledger, entry)."""
        await self._call("POST", f"{self._subscription_path(partition, subscription)}/resetcursor",
                         json={"ledgerId": ledger_id, "entryId": entry_id, "partitionIndex": -1,
                               "batchIndex": -1, "isExcluded": False})

    async def create_subscription(self, partition: PulsarTopic, subscription: str, ledger_id: int,
                                  entry_id: int, properties: dict[str, str]) -> None:
        """Create a durable subscription at (ledger, entry). Beware: Pulsar creates a missing topic."""
        await self._call("PUT", self._subscription_path(partition, subscription),
                         json={"ledgerId": ledger_id, "entryId": entry_id, "partitionIndex": -1,
                               "properties": properties})

    async def expire_subscription_to(self, partition: PulsarTopic, subscription: str, ledger_id: int,
                                     entry_id: int) -> None:
        """Acknowledge everything up to and including (ledger, entry) for ``subscription``: Pulsar's
        expire-by-position, which only ever moves a cursor forward."""
        index = int(partition.local_name.rsplit("-partition-", 1)[1])  # Pulsar checks it matches the topic
        await self._call("POST", f"{self._subscription_path(partition, subscription)}/expireMessages",
                         json={"ledgerId": ledger_id, "entryId": entry_id, "batchIndex": -1, "isExcluded": False,
                               "partitionIndex": index})

    async def trim(self, partition: PulsarTopic) -> None:
        """Ask Pulsar to delete now the ledgers that its retention and the cursors let go."""
        await self._call("POST", f"persistent/{partition.rest_path}/trim")

    async def delete_subscription(self, partition: PulsarTopic, subscription: str) -> None:
        await self._call("DELETE", self._subscription_path(partition, subscription), params={"force": "true"})

    async def entry_records(self, partition: PulsarTopic, ledger_id: int, entry_id: int) -> int | None:
        """How many Kafka records one entry holds (a Pulsar batch, a ``kafka``-format entry, or 1), from
        the headers of Pulsar's get-message-by-id (HEAD: no body); None when there is no such entry."""
        path = f"persistent/{partition.rest_path}/ledger/{ledger_id}/entry/{entry_id}"
        try:
            response = await self._http.head(path)
        except httpx.HTTPError as exc:
            raise Unreachable(0, f"HEAD {path}: {exc!r}") from exc
        return None if response.status_code >= 400 else records_from_headers(response.headers)

    async def set_compaction_threshold(self, topic: PulsarTopic, threshold_bytes: int) -> None:
        """A topic policy on a partitioned topic (Pulsar 4.0: POST on the topic, PUT on a namespace)."""
        await self._call("POST", f"persistent/{topic.rest_path}/compactionThreshold", json=threshold_bytes)

    async def set_namespace_compaction_threshold(self, ns: Namespace, threshold_bytes: int) -> None:
        await self._call("PUT", f"namespaces/{ns.path}/compactionThreshold", json=threshold_bytes)

    # -- namespaces and brokers ---------------------------------------------------------------

    async def ensure_namespace(self, ns: Namespace) -> None:
        try:
            await self._call("PUT", f"namespaces/{ns.path}")
        except Conflict:
            pass

    async def runtime_configuration(self) -> dict[str, str]:
        return dict(await self._call("GET", "brokers/configuration/runtime"))

    async def healthy(self) -> bool:
        try:
            return (await self._call("GET", "brokers/health")) == "ok"
        except AdminError:
            return False


def records_from_headers(headers: Any) -> int:
    """Records in an entry, from getMessageById's headers: a Pulsar batch, a ``kafka``-format entry, or 1."""
    batch = headers.get("X-Pulsar-num-batch-message")
    if batch and batch.strip().isdigit():
        return max(int(batch), 1)
    raw = headers.get(f"X-Pulsar-PROPERTY-{RECORDS}")  # Pulsar < 3: one header per property
    if raw is None:
        props = headers.get("X-Pulsar-PROPERTY")  # Pulsar 3/4: all properties as one JSON object
        if props:
            try:
                raw = json.loads(props).get(RECORDS)
            except (ValueError, AttributeError):
                raw = None
    if raw is not None and str(raw).strip().isdigit():
        return max(int(raw), 1)
    return 1

