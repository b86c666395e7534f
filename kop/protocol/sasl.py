"""SASL messages kop reads: PLAIN (RFC 4616) and OAUTHBEARER (RFC 7628), and how a Kafka identity
names a Pulsar tenant, namespace and token. Pure: bytes in, values out; ValueError on anything
malformed (the caller answers SASL_AUTHENTICATION_FAILED and closes the connection).

PLAIN: ``authzid NUL username NUL password``. The username is ``tenant`` or ``tenant/namespace``;
the password is ``token:<Pulsar JWT>``. An authzid, when given, must equal the username (Kafka's
rule: no impersonation).

OAUTHBEARER (the client's initial response; Kafka's client sends no other):
``n,[a=authzid],`` then ``\\x01``-separated ``key=value`` pairs ending with ``\\x01\\x01``; the pair
``auth=Bearer <token>`` carries the token, the others are SASL extensions (KIP-342). kop reads the
extensions ``tenant`` and ``namespace`` (when absent: the configured defaults).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Pulsar tenant and namespace names: letters, digits, '-', '_', '=', ':', '.'.
_NAME = re.compile(r"^[A-Za-z0-9_=:.\-]+$")
_EXTENSION_KEY = re.compile(r"^[A-Za-z]+$")


@dataclass(frozen=True)
class Credentials:
    """Who a client says it is, once the SASL message is read."""
    tenant: str
    namespace: str
    token: str = field(repr=False)
    user: str  # as the client gave it, for logs


def _check_name(kind: str, name: str) -> str:
    if not _NAME.match(name) or name in (".", ".."):
        raise ValueError(f"{kind} {name!r} is not a Pulsar {kind} name")
    return name


def tenant_and_namespace(user: str, default_namespace: str) -> tuple[str, str]:
    """``tenant`` or ``tenant/namespace`` -> (tenant, namespace)."""
    tenant, slash, namespace = user.partition("/")
    if not slash:
        namespace = default_namespace
    return _check_name("tenant", tenant), _check_name("namespace", namespace)


def parse_plain(message: bytes, default_namespace: str) -> Credentials:
    parts = message.split(b"\x00")
    if len(parts) != 3:
        raise ValueError("a PLAIN message is authzid NUL username NUL password")
    try:
        authzid, user, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise ValueError("PLAIN credentials are not UTF-8") from None
    if not user:
        raise ValueError("empty username")
    if authzid and authzid != user:
        raise ValueError("the authorization id differs from the username")
    if not password.startswith("token:") or len(password) == len("token:"):
        raise ValueError("the password must be token:<Pulsar JWT>")
    tenant, namespace = tenant_and_namespace(user, default_namespace)
    return Credentials(tenant, namespace, password[len("token:"):], user)


def parse_oauthbearer(message: bytes, default_tenant: str, default_namespace: str) -> Credentials:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the OAUTHBEARER message is not UTF-8") from None
    gs2, sep, rest = text.partition(",")
    if gs2 != "n" or not sep:
        raise ValueError("the OAUTHBEARER message must start with the GS2 header 'n,'")
    authzid, sep, rest = rest.partition(",")
    if not sep or (authzid and not authzid.startswith("a=")):
        raise ValueError("malformed GS2 header")
    if not rest.startswith("\x01") or not rest.endswith("\x01\x01"):
        raise ValueError("the key/value pairs must be \\x01-separated and end with \\x01\\x01")
    pairs: dict[str, str] = {}
    for item in rest[1:-2].split("\x01"):
        key, eq, value = item.partition("=")
        if not eq or not _EXTENSION_KEY.match(key) or key in pairs:
            raise ValueError(f"malformed key/value pair {item[:40]!r}")
        pairs[key] = value
    scheme, _, token = pairs.pop("auth", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ValueError("no 'auth=Bearer <token>' pair")
    tenant = _check_name("tenant", pairs.get("tenant", default_tenant))
    namespace = _check_name("namespace", pairs.get("namespace", default_namespace))
    user = authzid[2:] if authzid else f"{tenant}/{namespace}"
    return Credentials(tenant, namespace, token.strip(), user)
