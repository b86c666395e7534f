"""A Pulsar client per authenticated principal, so that Pulsar authorizes what each Kafka client does.

A SASL client names a tenant, a namespace and a Pulsar token (protocol/sasl.py). kop then serves
that connection's topic operations (Metadata, Produce, Fetch, ListOffsets, CreateTopics...) with a
:class:`~kop.backend.pulsar.PulsarBackend` of its own: a Pulsar client and an admin client carrying
*that* token, Kafka topics mapped into *that* namespace. Pulsar's authentication and authorization
decide; kop only translates their answers (401/403, AuthorizationError -> TOPIC_AUTHORIZATION_FAILED).
Producer ids, ``__offsets`` and the fleet registry stay on kop's own client (the system namespace).

Authentication (:meth:`PrincipalPool.authenticate`) asks Pulsar's admin API, with the token, for
the partitioned topics of the namespace:

- 401: Pulsar does not accept the token -> the SASL exchange fails (SASL_AUTHENTICATION_FAILED);
- 404: no such tenant or namespace -> fails too (the reason is logged and told to the client);
- 403: the token is valid but its role may not list that namespace -> authenticated; every
  operation on its topics will be refused by Pulsar (TOPIC_AUTHORIZATION_FAILED), and its consumer-
  group requests by kop (GROUP_AUTHORIZATION_FAILED, handlers/registry.py): Kafka's order,
  authentication first, authorization per resource;
- 200: authenticated.

The pool keeps at most ``sasl.max_principals`` principals (distinct token, tenant, namespace) with a
client open; beyond that, the least recently used one that no connection uses is closed. Connections
hold a reference while open (:meth:`acquire` / :meth:`release`). A token's expiry is Pulsar's
business: operations with an expired token are refused by Pulsar.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict

from ..mapping.topics import Namespace
from . import admin as admin_api
from . import retention_check
from .pulsar import PulsarBackend

log = logging.getLogger(__name__)


class AuthenticationFailed(Exception):
    """The reason is safe to tell the client (it names no secret)."""


class _Entry:
    __slots__ = ("backend", "users")

    def __init__(self, backend: PulsarBackend) -> None:
        self.backend = backend
        self.users = 0


class PrincipalPool:
    def __init__(self, main: PulsarBackend, max_principals: int = 64) -> None:
        self.main = main
        self.max_principals = max_principals
        self._entries: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self._creating: dict[tuple[str, str, str], asyncio.Future] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def authenticate(self, tenant: str, namespace: str, token: str) -> PulsarBackend:
        """The backend acting as this principal (see the module docstring); raises AuthenticationFailed.
        Concurrent first logins of one principal share one check (and one client)."""
        key = (token, tenant, namespace)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry.backend
        creating = self._creating.get(key)
        if creating is None:  # entries live only while a check runs: bounded by logins in progress
            creating = self._creating[key] = asyncio.ensure_future(self._create(key, tenant, namespace, token))
            creating.add_done_callback(lambda done: (self._creating.pop(key, None),
                                                     done.cancelled() or done.exception()))
        return await asyncio.shield(creating)

    async def _create(self, key: tuple[str, str, str], tenant: str, namespace: str, token: str) -> PulsarBackend:
        cfg = self.main.config
        config = dataclasses.replace(cfg, pulsar=dataclasses.replace(
            cfg.pulsar, tenant=tenant, namespace=namespace, auth_token=token))
        backend = PulsarBackend(config, parent=self.main)
        try:
            await self._check(backend, Namespace(tenant, namespace))
            await backend.start()
        except BaseException:
            await backend.close()
            raise
        self._entries[key] = _Entry(backend)
        await retention_check.warn_once(backend.admin, backend.namespace, self.main.broker_settings())
        await self._evict()
        return backend

    async def _check(self, backend: PulsarBackend, ns: Namespace) -> None:
        try:
            await backend.admin.list_partitioned_topics(ns)
        except admin_api.Denied as exc:
            if exc.status == 401:
                raise AuthenticationFailed("Pulsar did not accept the token") from exc
            log.info("principal for %s: token accepted, but its role may not list the namespace (%s); its "
                     "consumer-group requests get GROUP_AUTHORIZATION_FAILED", ns.path, exc)
            backend.namespace_authorized = False
        except admin_api.NotFound as exc:
            raise AuthenticationFailed(f"namespace {ns.path} does not exist in Pulsar") from exc
        except admin_api.AdminError as exc:
            raise AuthenticationFailed(f"Pulsar could not check the token: {exc}") from exc

    def acquire(self, backend: PulsarBackend) -> None:
        for entry in self._entries.values():
            if entry.backend is backend:
                entry.users += 1
                return

    def release(self, backend: PulsarBackend) -> None:
        for entry in self._entries.values():
            if entry.backend is backend:
                entry.users = max(0, entry.users - 1)
                return

    async def _evict(self) -> None:
        while len(self._entries) > self.max_principals:
            idle = next((k for k, e in self._entries.items() if not e.users), None)
            if idle is None:
                log.warning("%d principals in use, above sasl.max_principals=%d", len(self._entries),
                            self.max_principals)
                return
            entry = self._entries.pop(idle)
            await entry.backend.close()

    async def close(self) -> None:
        entries, self._entries = list(self._entries.values()), OrderedDict()
        for entry in entries:
            await entry.backend.close()
