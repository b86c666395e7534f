"""Kafka clients' own integration suites, run against kop and against Apache Kafka (issue 14).

kop's own tests use clients its developers chose; the strongest evidence that existing Kafka clients
work unchanged is the clients' own suites, run against kop exactly as their projects run them
against Kafka. Each suite runs against three targets in one run:

- ``kop-pulsar``: kop with ``--entry-format pulsar`` (each record one Pulsar message);
- ``kop-kafka``: kop with ``--entry-format kafka`` (each batch one Pulsar message);
- ``kafka``: an Apache Kafka 4.1.2 KRaft broker (scripts/kafka-broker.sh), the reference, so a test
  that is flaky or timing-bound on a small machine is not blamed on kop.

Modules: ``sources`` fetches the suites from package registries at pinned versions into a cache
outside the repo (``~/.cache/kop/conformance``) and builds them; ``targets`` starts and stops the
brokers; one module per suite (``franz_go``, ``librdkafka``, ``kafka_python``, ``java_compat``)
runs it and turns its output into per-test outcomes; ``verdicts`` classifies each difference
between kop and Kafka; ``report`` writes ``benchmarks/results/conformance.json`` and
``docs/compatibility.md``. ``python -m conformance`` (PYTHONPATH=scripts) is the command line;
``make conformance`` runs it in full, ``tests/conformance/test_smoke.py`` runs a small subset in
``make test``.

Nothing third-party is committed: the suites' code stays in the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("KOP_CACHE", Path.home() / ".cache" / "kop")) / "conformance"

# Pinned versions: every figure in the scoreboard is for exactly these.
FRANZ_GO_VERSION = "v1.21.5"
RDKAFKA_SYS_VERSION = "4.10.0+2.12.1"   # the crates.io crate that vendors librdkafka 2.12.1 with tests/
LIBRDKAFKA_VERSION = "2.12.1"
KAFKA_PYTHON_VERSION = "3.0.12"
CONFLUENT_KAFKA_VERSION = "2.16.1"
KAFKA_VERSION = "4.1.2"

# Outcomes of one test against one target.
PASS, FAIL, SKIP, FLAKY, TIMEOUT, NOT_RUN = "pass", "fail", "skip", "flaky", "timeout", "not run"


def log(message: str) -> None:
    print(f"[conformance] {message}", flush=True)
