"""ApiVersions (key 18), versions 0-4.

The answer lists exactly the registry's handlers (see registry.py). KIP-511: a client that opens
with a newer ApiVersions than kop serves gets UNSUPPORTED_VERSION in a version-0 body that still
lists the supported ranges, so it can retry with a version kop knows (server/exchange.py sends it, as the
request body of an unknown version cannot be decoded).

Deviations from Kafka: no supported/finalized features are reported (kop has none).
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import encode_response
from .registry import HANDLERS, handler, response_class

API_KEY = 18


def _body(error: ErrorCode):
    resp_cls = response_class(API_KEY)
    keys = [resp_cls.ApiVersion(api_key=h.api_key, min_version=h.advertised_min, max_version=h.max_version)
            for h in sorted(HANDLERS.values(), key=lambda h: h.api_key)]
    return resp_cls(error_code=error, api_keys=keys, throttle_time_ms=0)


@handler(API_KEY, 0, 4, before_auth=True)
async def serve(ctx, request):
    return _body(ErrorCode.NONE)


def fallback_response(correlation_id: int) -> list[bytes]:
    """The KIP-511 answer to an ApiVersions request of a version kop does not serve."""
    return encode_response(API_KEY, 0, correlation_id, _body(ErrorCode.UNSUPPORTED_VERSION))


def error_response(request, code):
    return _body(code)
