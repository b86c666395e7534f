"""SaslAuthenticate (key 36), versions 0-2: one SASL token from the client after a v1 SaslHandshake.

PLAIN and OAUTHBEARER complete in one round: the answer is an empty server token, or
SASL_AUTHENTICATION_FAILED with the reason, after which the connection is closed (as Kafka does).
``session_lifetime_ms`` (v1+) is 0: kop does not ask clients to re-authenticate (KIP-368); a client
that does is served (server/sasl_session.py).
"""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 36


@handler(API_KEY, 0, 2, before_auth=True)
async def serve(ctx, request):
    error, message, token = await ctx.session.authenticate(bytes(request.auth_bytes or b""))
    return response_class(API_KEY)(error_code=error, error_message=message, auth_bytes=token, session_lifetime_ms=0)


def error_response(request, code):
    return response_class(API_KEY)(error_code=code, error_message=None, auth_bytes=b"", session_lifetime_ms=0)
