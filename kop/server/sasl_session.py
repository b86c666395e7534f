"""The SASL state of one connection: which mechanism, who authenticated, which backend serves it.

States (Kafka's, KIP-43 and KIP-152):

    start --SaslHandshake(mechanism)--> handshaken --SaslAuthenticate(ok)--> authenticated
                                                  \\--(fails)--> failed: answer, then close

- SaslHandshake v0 (the legacy flow): the client's next frames are raw SASL tokens, not Kafka
  requests; the connection hands them to :meth:`authenticate` and answers with raw tokens.
- SaslHandshake v1: the tokens come in SaslAuthenticate requests.
- Before authentication a SASL listener serves only ApiVersions, SaslHandshake and SaslAuthenticate;
  anything else closes the connection with a log line (as Kafka does).
- Re-authentication (KIP-368): an authenticated v1 client may handshake and authenticate again; the
  new credentials must name the same tenant and namespace (Kafka: the same principal). kop does not
  ask for it (``session_lifetime_ms`` 0: the Pulsar token's own expiry governs, enforced by Pulsar).
- On a listener without SASL, SaslHandshake is answered ILLEGAL_SASL_STATE.
- SCRAM-SHA-256/512 (protocol/scram.py) take two SaslAuthenticate rounds (or two raw tokens); the
  user's tenant, namespace and Pulsar token come from kop's SCRAM users file (server/scram_users.py).
"""

from __future__ import annotations

import logging

from ..backend.principals import AuthenticationFailed, PrincipalPool
from ..protocol.errors import ErrorCode
from ..protocol.sasl import Credentials, parse_oauthbearer, parse_plain
from ..protocol.scram import ScramError, ScramServer

log = logging.getLogger(__name__)


class SaslSession:
    def __init__(self, *, required: bool, mechanisms: list[str], pool: PrincipalPool | None, backend,
                 default_tenant: str, default_namespace: str, peer: str = "?", scram_users=None) -> None:
        self.required = required
        self.mechanisms = mechanisms
        self._pool = pool
        self.backend = backend  # kop's own until a principal authenticates
        self._default_tenant = default_tenant
        self._default_namespace = default_namespace
        self.peer = peer
        self.principal: Credentials | None = None
        self.mechanism: str | None = None
        self.legacy = False
        self.failed = False
        self._users = scram_users
        self._scram: ScramServer | None = None

    @property
    def authenticated(self) -> bool:
        return self.principal is not None

    @property
    def groups_allowed(self) -> bool:
        """False for a principal whose role Pulsar refused on its namespace (backend/principals.py)."""
        return self.principal is None or getattr(self.backend, "namespace_authorized", True)

    @property
    def expects_raw_token(self) -> bool:
        """After a v0 handshake, the next frame is a bare SASL token."""
        return self.legacy and self.mechanism is not None and not self.authenticated and not self.failed

    def describe(self) -> str:
        return self.principal.user if self.principal else "ANONYMOUS"

    def handshake(self, mechanism: str, version: int) -> ErrorCode:
        if not self.required or self.failed:
            return ErrorCode.ILLEGAL_SASL_STATE
        if self.mechanism is not None and not self.authenticated:
            return ErrorCode.ILLEGAL_SASL_STATE  # a second handshake before authenticating
        if self.authenticated and version == 0:
            return ErrorCode.ILLEGAL_SASL_STATE  # re-authentication needs SaslAuthenticate (v1)
        if mechanism not in self.mechanisms:
            return ErrorCode.UNSUPPORTED_SASL_MECHANISM
        self.mechanism = mechanism
        self.legacy = version == 0
        return ErrorCode.NONE

    async def authenticate(self, token: bytes) -> tuple[ErrorCode, str | None, bytes]:
        """(error, message for the client, server token). On failure the caller closes the connection.
        PLAIN and OAUTHBEARER take one round; SCRAM two (the mechanism stays chosen in between)."""
        if self.mechanism is None or self.failed:
            return ErrorCode.ILLEGAL_SASL_STATE, "SaslAuthenticate before SaslHandshake", b""
        mechanism = self.mechanism
        answer = b""
        try:
            if mechanism == "PLAIN":
                credentials = parse_plain(token, self._default_namespace)
            elif mechanism == "OAUTHBEARER":
                credentials = parse_oauthbearer(token, self._default_tenant, self._default_namespace)
            elif self._scram is None:  # SCRAM, first round
                if self._users is None:
                    return self._fail("SCRAM is not configured on this gateway")
                self._scram = ScramServer(mechanism, lambda name: self._users.credential(mechanism, name))
                return ErrorCode.NONE, None, self._scram.first(token)
            else:  # SCRAM, second round
                answer = self._scram.final(token)
                user = self._users.user(self._scram.user)
                if user is None:
                    return self._fail(f"SCRAM user {self._scram.user!r} was removed meanwhile")
                credentials = Credentials(user.tenant, user.namespace, user.pulsar_token, user.name)
        except (ValueError, ScramError) as exc:
            return self._fail(f"{mechanism}: {exc}")
        self.mechanism, self._scram = None, None
        previous = self.principal
        if previous is not None and (previous.tenant, previous.namespace) != (credentials.tenant, credentials.namespace):
            return self._fail(f"re-authentication as {credentials.tenant}/{credentials.namespace} "
                              f"instead of {previous.tenant}/{previous.namespace}")
        if self._pool is None:
            return self._fail("SASL is not configured on this gateway")
        try:
            backend = await self._pool.authenticate(credentials.tenant, credentials.namespace, credentials.token)
        except AuthenticationFailed as exc:
            return self._fail(f"{credentials.user} via {mechanism}: {exc}")
        self._pool.acquire(backend)
        if previous is not None:
            self._pool.release(self.backend)
        self.principal, self.backend = credentials, backend
        log.info("%s authenticated as %s (%s, Pulsar namespace %s/%s)%s", self.peer, credentials.user, mechanism,
                 credentials.tenant, credentials.namespace, " again" if previous else "")
        return ErrorCode.NONE, None, answer

    def _fail(self, reason: str) -> tuple[ErrorCode, str, bytes]:
        self.failed = True
        log.warning("%s: SASL authentication failed: %s", self.peer, reason)
        return ErrorCode.SASL_AUTHENTICATION_FAILED, f"Authentication failed: {reason}", b""

    def close(self) -> None:
        if self.principal is not None and self._pool is not None:
            self._pool.release(self.backend)
