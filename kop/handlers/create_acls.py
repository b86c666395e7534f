"""CreateAcls (key 30), versions 1-3: every creation is answered SECURITY_DISABLED, as by a Kafka
broker with no authorizer configured; kop has no Kafka ACLs (describe_acls.py says why it answers
at all). Grant rights with Pulsar's own permissions on the tenant's namespace instead."""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from .describe_acls import NO_ACLS
from .registry import handler, response_class

API_KEY = 30


@handler(API_KEY, 1, 3)
async def serve(ctx, request):
    return error_response(request, ErrorCode.SECURITY_DISABLED, NO_ACLS)


def error_response(request, code, message=None):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, results=[resp.AclCreationResult(error_code=code, error_message=message)
                                             for _ in request.creations])
