"""The secured Pulsar (token authentication and authorization on) and kop gateways in front of it.

scripts/pulsar-secure.sh starts a second Pulsar standalone next to the plain one (broker 6660,
admin 8090, run dir .run/pulsar-secure-test) with tenants acme and globex; scripts/tls.sh makes a
CA and certificates. A gateway here serves PLAINTEXT (kop's own superuser token), SASL_PLAINTEXT,
SASL_SSL and SSL listeners.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import ROOT, Gateway, free_port

SECURE_DIR = ROOT / ".run" / "pulsar-secure-test"
ADMIN_URL = "http://127.0.0.1:8090"
SERVICE_URL = "pulsar://127.0.0.1:6660"


@dataclass
class Secure:
    tokens: dict[str, str]
    tls: Path

    @property
    def ca(self) -> str:
        return str(self.tls / "ca.pem")


@pytest.fixture(scope="session")
def secure():
    env = {**os.environ, "KOP_RUN_DIR": str(SECURE_DIR), "KOP_TOKENS_DIR": str(SECURE_DIR / "tokens"),
           "KOP_PULSAR_FRESH": "1", "KOP_SECURE_WEB_PORT": "8090", "KOP_SECURE_BROKER_PORT": "6660"}
    script = str(ROOT / "scripts" / "pulsar-secure.sh")
    already = subprocess.run([script, "status"], env=env, capture_output=True).returncode == 0
    subprocess.run([script, "start"], env=env, check=True)
    subprocess.run([str(ROOT / "scripts" / "tls.sh"), str(SECURE_DIR / "tls")], check=True)
    tokens = {name: (SECURE_DIR / "tokens" / f"{name}.jwt").read_text().strip() for name in ("admin", "acme", "globex")}
    yield Secure(tokens, SECURE_DIR / "tls")
    if not already:
        subprocess.run([script, "stop"], env=env, check=False)


@dataclass
class SecureGateway:
    gw: Gateway
    sasl_port: int
    sasl_ssl_port: int
    ssl_port: int

    @property
    def plain(self) -> str:
        return self.gw.bootstrap

    @property
    def sasl(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def sasl_ssl(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ssl(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"


@pytest.fixture
def secure_gateways(secure):
    """Factory: a gateway on the secured Pulsar with all four listeners; stopped afterwards."""
    started: list[Gateway] = []

    def start(client_auth: str = "requested", env: dict[str, str] | None = None) -> SecureGateway:
        ports = free_port(), free_port(), free_port()
        gw_env = {"KOP_PULSAR_AUTH_TOKEN": secure.tokens["admin"],
                  "KOP_SERVER_LISTENERS": f"SASL_PLAINTEXT://127.0.0.1:{ports[0]},SASL_SSL://127.0.0.1:{ports[1]},"
                                          f"SSL://127.0.0.1:{ports[2]}",
                  "KOP_TLS_CERT_FILE": str(secure.tls / "server.pem"),
                  "KOP_TLS_KEY_FILE": str(secure.tls / "server.key"),
                  "KOP_TLS_CA_FILE": secure.ca, "KOP_TLS_CLIENT_AUTH": client_auth,
                  "KOP_GROUPS_INITIAL_REBALANCE_DELAY_MS": "300", **(env or {})}
        gw = Gateway(env=gw_env, admin_url=ADMIN_URL, service_url=SERVICE_URL).start()
        started.append(gw)
        return SecureGateway(gw, *ports)
    yield start
    for gw in started:
        gw.stop()
