"""The handler registry: one entry per Kafka API kop serves, and the ApiVersions answer built from it.

The list of APIs is kept once, here, by discovery: :func:`load_all` imports every module of this
package, and each handler module registers itself with :func:`handler`, naming the API key, the
versions it serves and how the connection must treat its requests (the flags below). Registering
also enters the API's codec into ``protocol.messages.CODECS``; ApiVersions advertises exactly the
registered entries; the tests read the same registry. So a client never chooses an API or version
that kop would then refuse, and adding an API is adding its module.

Flags (server/pipeline.py applies them; the connection knows no API numbers):

- ``before_auth``: served on a SASL listener before authentication (ApiVersions, SaslHandshake,
  SaslAuthenticate); any other request there closes the connection, before its body is decoded.
- ``group_api``: a consumer-group API. For a SASL principal whose token Pulsar accepted but whose
  role may not use its namespace (backend/principals.py) it is answered GROUP_AUTHORIZATION_FAILED
  without reaching the coordinator, so such a client can never join, commit to or read the groups
  of a namespace it has no rights on (the coordinator itself acts with kop's own credentials).
- ``serialized``: one request of the API at a time per connection, each started once the previous
  answer is written and the socket takes more (Fetch: a client that pipelines fetches and never
  reads holds at most two answers in kop).
- ``immediate``: the handler is a plain function, called within the loop step that decoded the
  request (Produce, the hot path).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable

from ..protocol.messages import codec, register as register_codec


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
    before_auth: bool = False
    serialized: bool = False

    def serves(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


HANDLERS: dict[int, Handler] = {}


def handler(api_key: int, min_version: int, max_version: int, advertised_min: int | None = None, *,
            group_api: bool = False, immediate: bool = False, before_auth: bool = False, serialized: bool = False):
    request_cls = register_codec(api_key)[0]
    low, high = request_cls.valid_versions
    assert low <= min_version <= max_version <= high, (api_key, min_version, max_version)

    def register(fn):
        HANDLERS[api_key] = Handler(api_key, min_version, max_version,
                                    min_version if advertised_min is None else advertised_min, fn,
                                    group_api=group_api, immediate=immediate, before_auth=before_auth,
                                    serialized=serialized)
        return fn
    return register


def response_class(api_key: int) -> Any:
    return codec(api_key)[1]


def handler_modules() -> list[str]:
    """The modules of this package: the handler modules and their helpers."""
    package = importlib.import_module(__package__)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.ispkg)


def load_all() -> dict[int, Handler]:
    """Import every module of the package; each handler module registers itself, and its
    ``error_response`` becomes its entry's."""
    for name in handler_modules():
        module = importlib.import_module(f"{__package__}.{name}")
        api_key = getattr(module, "API_KEY", None)
        if api_key is None:
            continue  # a helper (context.py, topic_admin.py, this module)
        entry = HANDLERS[api_key]
        if entry.error_response is None:
            HANDLERS[api_key] = replace(entry, error_response=module.error_response)
    return HANDLERS
