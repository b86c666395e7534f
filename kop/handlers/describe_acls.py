"""DescribeAcls (key 29), versions 1-3: kop has no Kafka ACLs, so it answers as a Kafka broker with no
authorizer configured does: SECURITY_DISABLED. Who may do what is Pulsar's authorization, applied
to the Pulsar token of each connection (README "Security and tenancy").

Served rather than left out because clients treat the two differently: an unserved API is
"broker too old" (Kafka's ClientCompatibilityTest fails on it, `kafka-acls --list` and
AdminClient.describeAcls report UnsupportedVersionException), while SECURITY_DISABLED is what every
Kafka cluster without an authorizer answers, and tools handle it. Version 0 is gone from Kafka 4
(KIP-896) and from the codec.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 29
NO_ACLS = "kop has no Kafka ACLs: Pulsar's authorization decides (no authorizer is configured)"


@handler(API_KEY, 1, 3)
async def serve(ctx, request):
    return error_response(request, ErrorCode.SECURITY_DISABLED, NO_ACLS)


def error_response(request, code, message=None):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, error_message=message, resources=[])
