"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the server side, as Kafka clients speak it.
Pure: messages in, messages out; :class:`ScramError` for anything malformed or wrong (the caller
answers SASL_AUTHENTICATION_FAILED and closes the connection).

Exchange (two SaslAuthenticate rounds)::

    client-first   n,,n=<user>,r=<client nonce>           -> server-first  r=<nonce>,s=<salt>,i=<iterations>
    client-final   c=biws,r=<nonce>,p=<proof>             -> server-final  v=<server signature>

kop keeps, per user and mechanism, only the salt, the iteration count, StoredKey = H(ClientKey) and
ServerKey (never the password): :func:`make_credential` derives them, which is what
``kop scram add`` writes into the credentials file (server/scram_users.py). A client proves it knows
the password without sending it; the server proves it knows ServerKey. Kafka's ``tokenauth``
extension (delegation tokens) is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Callable

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MIN_ITERATIONS = 4096  # Kafka's minimum
NONCE_BYTES = 24


class ScramError(ValueError):
    pass


@dataclass(frozen=True)
class Credential:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def _hmac(hash_name: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hash_name).digest()


def make_credential(mechanism: str, password: str, iterations: int = 8192, salt: bytes | None = None) -> Credential:
    hash_name = HASHES[mechanism]
    if iterations < MIN_ITERATIONS:
        raise ValueError(f"at least {MIN_ITERATIONS} iterations")
    salt = salt if salt is not None else os.urandom(24)
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode("utf-8"), salt, iterations)
    client_key = _hmac(hash_name, salted, b"Client Key")
    return Credential(salt, iterations, hashlib.new(hash_name, client_key).digest(),
                      _hmac(hash_name, salted, b"Server Key"))


def _attributes(text: str) -> list[tuple[str, str]]:
    out = []
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if len(key) != 1 or not eq:
            raise ScramError(f"malformed SCRAM attribute {item[:20]!r}")
        out.append((key, value))
    return out


def _saslname(value: str) -> str:
    if "=" in value.replace("=2C", "").replace("=3D", ""):
        raise ScramError("malformed user name")
    return value.replace("=2C", ",").replace("=3D", "=")


class ScramServer:
    """One exchange. ``lookup(user)`` gives the user's credential for this mechanism, or None."""

    def __init__(self, mechanism: str, lookup: Callable[[str], Credential | None],
                 nonce: Callable[[], str] | None = None) -> None:
        if mechanism not in HASHES:
            raise ValueError(mechanism)
        self.mechanism = mechanism
        self._hash = HASHES[mechanism]
        self._lookup = lookup
        self._nonce = nonce or (lambda: base64.b64encode(os.urandom(NONCE_BYTES)).decode())
        self.user: str | None = None
        self._credential: Credential | None = None
        self._client_first_bare = ""
        self._server_first = ""
        self._gs2_header = ""
        self._full_nonce = ""
        self.done = False

    def first(self, message: bytes) -> bytes:
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            raise ScramError("the client-first message is not UTF-8") from None
        if not text.startswith(("n,", "y,")):
            raise ScramError("unsupported channel binding (the GS2 header must be 'n,' or 'y,')")
        flag, authzid, bare = (text.split(",", 2) + ["", ""])[:3]
        if authzid and not authzid.startswith("a="):
            raise ScramError("malformed GS2 header")
        attributes = _attributes(bare)
        if len(attributes) < 2 or attributes[0][0] != "n" or attributes[1][0] != "r" or not attributes[1][1]:
            raise ScramError("the client-first message must be n=<user>,r=<nonce>")
        extensions = dict(attributes[2:])
        if extensions.get("t") or "tokenauth" in bare:
            raise ScramError("delegation tokens are not supported")
        user = _saslname(attributes[0][1])
        if authzid and _saslname(authzid[2:]) != user:
            raise ScramError("the authorization id differs from the user name")
        credential = self._lookup(user)
        if credential is None:
            raise ScramError(f"unknown user {user!r} for {self.mechanism}")
        self.user, self._credential = user, credential
        self._gs2_header = f"{flag},{authzid},"
        self._client_first_bare = bare
        self._full_nonce = attributes[1][1] + self._nonce()
        self._server_first = (f"r={self._full_nonce},s={base64.b64encode(credential.salt).decode()},"
                              f"i={credential.iterations}")
        return self._server_first.encode()

    def final(self, message: bytes) -> bytes:
        if self._credential is None or self.done:
            raise ScramError("client-final message out of order")
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            raise ScramError("the client-final message is not UTF-8") from None
        without_proof, sep, proof_part = text.rpartition(",p=")
        if not sep:
            raise ScramError("the client-final message has no proof")
        attributes = dict(_attributes(without_proof))
        if attributes.get("c") != base64.b64encode(self._gs2_header.encode()).decode():
            raise ScramError("channel binding does not match the client-first message")
        if attributes.get("r") != self._full_nonce:
            raise ScramError("nonce mismatch")
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError:
            raise ScramError("the proof is not base64") from None
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        credential = self._credential
        signature = _hmac(self._hash, credential.stored_key, auth_message)
        if len(proof) != len(signature):
            raise ScramError("invalid credentials")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(self._hash, client_key).digest(), credential.stored_key):
            raise ScramError("invalid credentials")
        self.done = True
        server_signature = _hmac(self._hash, credential.server_key, auth_message)
        return b"v=" + base64.b64encode(server_signature)
