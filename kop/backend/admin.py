"""Pulsar's admin REST API, asynchronously (httpx): topics, partitions, positions, broker settings.

Only this module and backend/pulsar.py talk to Pulsar. HTTP failures become :class:`AdminError`
subclasses here; backend/pulsar.py turns those into Kafka error codes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from ..mapping.topics import Namespace, PulsarTopic

log = logging.getLogger(__name__)


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


class PulsarAdmin:
    def __init__(self, base_url: str, auth_token: str = "", timeout_s: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/admin/v2/", headers=headers,
                                       timeout=timeout_s)

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
            cls = {404: NotFound, 409: Conflict}.get(response.status_code, AdminError)
            raise cls(response.status_code, f"{method} {path}: {reason}")
        if not response.content:
            return None
        try:
            return response.json()
        except json.JSONDecodeError:
            return response.text

    # -- topics -------------------------------------------------------------------------------

    async def partition_count(self, topic: PulsarTopic) -> int:
        """Partitions of a partitioned topic; 0 when it does not exist (or is not partitioned)."""
        try:
            meta = await self._call("GET", f"persistent/{topic.rest_path}/partitions",
                                    params={"checkAllowAutoCreation": "false"})
        except NotFound:  # Pulsar 4 answers 404 where older versions answered {"partitions": 0}
            return 0
        return int(meta.get("partitions", 0))

    async def create_partitioned_topic(self, topic: PulsarTopic, partitions: int) -> None:
        await self._call("PUT", f"persistent/{topic.rest_path}/partitions", json=partitions)

    async def delete_partitioned_topic(self, topic: PulsarTopic) -> None:
        await self._call("DELETE", f"persistent/{topic.rest_path}/partitions", params={"force": "true"})

    async def list_partitioned_topics(self, ns: Namespace) -> list[str]:
        return list(await self._call("GET", f"persistent/{ns.path}/partitioned"))

    async def last_message_id(self, partition: PulsarTopic) -> dict[str, int]:
        """{"ledgerId", "entryId", "batchIndex"} of the last entry (entryId -1 when none)."""
        return await self._call("GET", f"persistent/{partition.rest_path}/lastMessageId")

    async def internal_stats(self, partition: PulsarTopic) -> dict[str, Any]:
        return await self._call("GET", f"persistent/{partition.rest_path}/internalStats")

    async def unload(self, partition: PulsarTopic) -> None:
        await self._call("PUT", f"persistent/{partition.rest_path}/unload")

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
