"""The handler registry: one entry per Kafka API kop serves, and the ApiVersions answer built from it.

Each handler module registers itself with :func:`handler`, naming the API key and the versions it
serves. ApiVersions advertises exactly these entries and nothing else, so a client never chooses an
API or version that kop would then refuse.

Consumer-group APIs are registered with ``group_api=True``: for a SASL principal whose token Pulsar
accepted but whose role may not use its namespace (principals.py), they are answered
GROUP_AUTHORIZATION_FAILED without reaching the coordinator, so such a client can never join,
commit to or read the groups of a namespace it has no rights on (the coordinator itself acts with
kop's own credentials).
"""

from __future__ import annotations

import importlib
import logging

from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable

from ..protocol.errors import ErrorCode
from ..protocol.messages import CODECS


@dataclass(frozen=True, slots=True)
class Handler:
    api_key: int
    min_version: int
    max_version: int
    # Versions advertised below min_version, decoded by nobody: clients that would pick them
    # never do (Produce min 0, see produce.py), and a request in that range closes the connection.
    advertised_min: int
    serve: Callable[[Any, Any], Awaitable[Any]]
    # Builds the answer to a request whose handler failed unexpectedly: every partition/topic
    # gets UNKNOWN_SERVER_ERROR (the traceback is logged), and the connection stays usable.
    error_response: Callable[[Any, int], Any] | None = None
    group_api: bool = False
    # A plain function, not a coroutine: it runs within the step that decoded the request and returns
    # the response, a future of it, or a coroutine for what it could not finish at once (the
    # connection makes a task of only that). Produce, the hot path, is one.
    immediate: bool = False

    def serves(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


HANDLERS: dict[int, Handler] = {}
log = logging.getLogger(__name__)


def handler(api_key: int, min_version: int, max_version: int, advertised_min: int | None = None,
            group_api: bool = False, immediate: bool = False):
    request_cls = CODECS[api_key][0]
    low, high = request_cls.valid_versions
    assert low <= min_version <= max_version <= high, (api_key, min_version, max_version)

    def register(fn):
        HANDLERS[api_key] = Handler(api_key, min_version, max_version,
                                    min_version if advertised_min is None else advertised_min, fn,
                                    group_api=group_api, immediate=immediate)
        return fn
    return register


def response_class(api_key: int) -> Any:
    return CODECS[api_key][1]


# Every handler module; each registers itself when imported.
MODULES = ("alter_configs", "api_versions", "create_acls", "create_partitions", "create_topics",
           "delete_acls", "delete_groups", "delete_records", "delete_topics", "describe_acls", "describe_cluster",
           "describe_configs", "describe_groups", "describe_topic_partitions", "fetch",
           "find_coordinator", "heartbeat", "incremental_alter_configs", "init_producer_id", "join_group",
           "leave_group", "list_config_resources", "list_groups", "list_offsets", "metadata", "offset_commit",
           "offset_delete", "offset_fetch", "produce", "sasl_authenticate", "sasl_handshake", "sync_group")


def load_all() -> dict[int, Handler]:
    """Import every handler module (each registers itself)."""
    for name in MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        entry = HANDLERS[module.API_KEY]
        if entry.error_response is None:
            serve = _guarded(entry.serve, module.error_response) if entry.group_api else entry.serve
            HANDLERS[module.API_KEY] = replace(entry, serve=serve, error_response=module.error_response)
    return HANDLERS


def _guarded(serve, error_response):
    async def guarded(ctx, request):
        if ctx.session is not None and not ctx.session.groups_allowed:
            log.warning("%s (%s): group request refused (GROUP_AUTHORIZATION_FAILED): Pulsar does not let its "
                        "role use namespace %s", ctx.client_address, ctx.session.describe(),
                        ctx.backend.namespace.path)
            return error_response(request, ErrorCode.GROUP_AUTHORIZATION_FAILED)
        return await serve(ctx, request)
    return guarded
