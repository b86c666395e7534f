"""Shared fixtures. Tests under tests/pulsar, tests/clients and tests/faults need the real Pulsar: when none
answers at KOP_PULSAR_ADMIN_URL (default http://127.0.0.1:8080), one is started with
scripts/pulsar.sh for the session (make test / scripts/test.sh normally did that already)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import ROOT, Gateway, pulsar_reachable


@pytest.fixture(scope="session")
def pulsar():
    started = False
    if not pulsar_reachable():
        env = {**os.environ, "KOP_RUN_DIR": str(ROOT / ".run" / "pulsar-test"), "KOP_PULSAR_FRESH": "1",
               "PULSAR_EXTRA_CONF": os.environ.get("TEST_PULSAR_CONF", "managedLedgerMaxEntriesPerLedger=200")}
        subprocess.run([str(ROOT / "scripts" / "pulsar.sh"), "start"], check=True, env=env)
        started = True
    yield
    if started:
        env = {**os.environ, "KOP_RUN_DIR": str(ROOT / ".run" / "pulsar-test")}
        subprocess.run([str(ROOT / "scripts" / "pulsar.sh"), "stop"], check=False, env=env)


@pytest.fixture
def gateways(pulsar):
    """Factory: ``gateways(*cli_args, env=...)`` starts a kop process; all are stopped afterwards."""
    started: list[Gateway] = []

    def start(*args: str, env: dict[str, str] | None = None, port: int | None = None) -> Gateway:
        gw = Gateway(*args, env=env, port=port).start()
        started.append(gw)
        return gw
    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(params=["pulsar", "kafka"])
def entry_format(request) -> str:
    return request.param


@pytest.fixture
def gateway(gateways, entry_format):
    return gateways("--entry-format", entry_format)


KAFKA_TOOLS = ROOT / "scripts" / "kafka-tools.sh"
KAFKA_TOOLS_STAMP = Path(os.environ.get("KOP_CACHE", Path.home() / ".cache" / "kop")) / "kafka-tools-4.1.2" / "libs" / ".complete-tools-core"


@pytest.fixture(scope="module")
def kafka_tools() -> Path:
    """scripts/kafka-tools.sh, once Kafka's Java tools are fetched (`make test` fetches them): a
    missing install fails the test rather than skipping it."""
    if not KAFKA_TOOLS_STAMP.exists():
        pytest.fail(f"Kafka's Java tools are missing ({KAFKA_TOOLS_STAMP} not found): run `make kafka-tools` "
                    f"(scripts/kafka-tools.sh fetch) first; `make test` does it")
    java = os.environ.get("JAVA") or (os.path.join(os.environ["JAVA_HOME"], "bin", "java")
                                      if os.environ.get("JAVA_HOME") else shutil.which("java"))
    if not java or not os.path.exists(java):
        pytest.fail("no java found (set JAVA_HOME or put java on PATH) to run Kafka's tools")
    return KAFKA_TOOLS
