"""Fixtures of the application tests: Kafka Streams and Kafka Connect 4.1.2 from Maven Central
(scripts/kafka-apps.sh), and the test's Kafka Streams application compiled against them."""

from __future__ import annotations

import subprocess

import pytest

from apps import APPS


@pytest.fixture(scope="session")
def kafka_apps():
    """scripts/kafka-apps.sh, once its jars are fetched and tests/clients/apps/java compiled (`make test`
    fetches them; a failure fails the tests that need them, it does not skip them)."""
    proc = subprocess.run([str(APPS), "compile"], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"scripts/kafka-apps.sh compile failed:\n{proc.stdout}\n{proc.stderr}")
    return APPS
