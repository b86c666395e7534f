"""The SCRAM users kop keeps: a JSON file (``sasl.scram_credentials_file``), written by
``kop scram add`` with mode 0600.

Per user: the Pulsar tenant and namespace it works in, the Pulsar token kop uses on its behalf (the
user's Pulsar role: Pulsar still authorizes everything), and per SCRAM mechanism the salt, iteration
count, StoredKey and ServerKey (protocol/scram.py) -- never the password::

    {"users": {"alice": {"tenant": "acme", "namespace": "default", "pulsar_token": "<JWT>",
                         "SCRAM-SHA-256": {"salt": "<b64>", "iterations": 8192,
                                           "stored_key": "<b64>", "server_key": "<b64>"},
                         "SCRAM-SHA-512": {...}}}}

The file is read again when its modification time changes, so users are added without a restart.
A malformed file is logged and the users read before are kept.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field

from ..protocol.sasl import tenant_and_namespace
from ..protocol.scram import HASHES, Credential, make_credential

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScramUser:
    name: str
    tenant: str
    namespace: str
    pulsar_token: str = field(repr=False)
    credentials: dict[str, Credential] = field(repr=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _parse(data: dict) -> dict[str, ScramUser]:
    users = {}
    for name, entry in data.get("users", {}).items():
        tenant, namespace = tenant_and_namespace(f"{entry['tenant']}/{entry['namespace']}", "")
        credentials = {}
        for mechanism in HASHES:
            c = entry.get(mechanism)
            if c:
                credentials[mechanism] = Credential(base64.b64decode(c["salt"]), int(c["iterations"]),
                                                    base64.b64decode(c["stored_key"]),
                                                    base64.b64decode(c["server_key"]))
        users[name] = ScramUser(name, tenant, namespace, str(entry["pulsar_token"]), credentials)
    return users


class ScramUsers:
    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime: float | None = None
        self._users: dict[str, ScramUser] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as exc:
            if self._mtime is not None or not self._users:
                log.warning("SCRAM users file %s unreadable: %s", self.path, exc)
            return
        if mtime == self._mtime:
            return
        try:
            with open(self.path, encoding="utf-8") as fh:
                self._users = _parse(json.load(fh))
            log.info("SCRAM users file %s: %d users", self.path, len(self._users))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("SCRAM users file %s is malformed (%r); keeping the %d users read before",
                        self.path, exc, len(self._users))
        self._mtime = mtime

    def user(self, name: str) -> ScramUser | None:
        self._reload()
        return self._users.get(name)

    def credential(self, mechanism: str, name: str) -> Credential | None:
        user = self.user(name)
        return user.credentials.get(mechanism) if user else None


def add_user(path: str, name: str, password: str, tenant: str, namespace: str, pulsar_token: str,
             iterations: int = 8192) -> None:
    """Add or replace a user (both SCRAM mechanisms), rewriting the file atomically with mode 0600."""
    tenant, namespace = tenant_and_namespace(f"{tenant}/{namespace}", "")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        data = {"users": {}}
    entry = {"tenant": tenant, "namespace": namespace, "pulsar_token": pulsar_token}
    for mechanism in HASHES:
        c = make_credential(mechanism, password, iterations)
        entry[mechanism] = {"salt": _b64(c.salt), "iterations": c.iterations, "stored_key": _b64(c.stored_key),
                            "server_key": _b64(c.server_key)}
    data.setdefault("users", {})[name] = entry
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".scram-users-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
