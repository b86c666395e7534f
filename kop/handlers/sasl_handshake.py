"""SaslHandshake (key 17), versions 0-1: picks the SASL mechanism (server/sasl_session.py).

v0 is the legacy flow: the SASL tokens that follow are raw frames, not Kafka requests. The response
lists the mechanisms offered (``sasl.mechanisms``). Deviations from Kafka: none known; on a listener
without SASL the answer is ILLEGAL_SASL_STATE, and GSSAPI / SCRAM are not offered.
"""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 17


@handler(API_KEY, 0, 1, before_auth=True)
async def serve(ctx, request):
    session = ctx.session
    error = session.handshake(request.mechanism, ctx.version)
    return response_class(API_KEY)(error_code=error, mechanisms=list(session.mechanisms if session.required else []))


def error_response(request, code):
    return response_class(API_KEY)(error_code=code, mechanisms=[])
