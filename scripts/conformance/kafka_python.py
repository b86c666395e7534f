"""kafka-python's own integration tests (test/integration in its PyPI sdist), against a given broker.

Their harness accepts an external broker: ``KAFKA_URI=tcp://host:port`` makes its broker fixture an
``ExternalService`` instead of a Kafka it downloads and spawns, and ``KAFKA_VERSION`` (required)
says which features to expect; 4.1.2 is the reference broker's version (no ZooKeeper then).

Two gaps of the sdist (MANIFEST.in packages kafka/*.py and top-level files; the tests come along
only partly): ``test/__init__.py`` is missing, so ``test`` would be the standard library's package,
and so is ``test/service.py``, which the fixtures module imports for both service kinds.
We write an empty ``__init__.py`` and SERVICE_STAND_IN, our replacement for the external case only:
a host and port, nothing to start or stop; spawning a broker is refused, so nothing the harness
runs differs from its external mode. Both are written next to the unpacked sdist in the cache,
never into this repository. The fixtures also insist that ``KAFKA_ROOT`` (a Kafka distribution)
is a directory even in external mode, where nothing in it is used: it is an empty one.

The SASL and SSL modules skip themselves against an external broker (they need a broker the
harness configured); they are not run. Results come from pytest's JUnit XML.
"""

from __future__ import annotations

import os
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import FAIL, FLAKY, KAFKA_VERSION, PASS, SKIP, TIMEOUT, log
from .results import SuiteRun, TestOutcome

TEST_PATHS = ("test/integration/test_producer_integration.py", "test/integration/test_consumer_integration.py",
              "test/integration/test_admin_integration.py")
PER_TEST_TIMEOUT_S = 120

SERVICE_STAND_IN = '''"""Written by kop's conformance runner (scripts/conformance/kafka_python.py): the sdist lacks
test/service.py; external brokers only."""


class ExternalService:
    def __init__(self, host, port):
        self.host, self.port = host, port

    def start(self):
        pass

    def stop(self):
        pass

    def dump_logs(self):
        pass

    def wait_for(self, pattern, timeout=30):
        return True


class SpawnedService:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("kop's conformance runner only runs kafka-python's tests against an external broker")
'''


def _outcomes(junit: Path) -> dict[str, TestOutcome]:
    results: dict[str, TestOutcome] = {}
    if not junit.exists():
        return results
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = (case.get("classname") or "").rsplit(".", 1)[-1]
        name = f"{module}::{case.get('name')}"
        seconds = round(float(case.get("time") or 0), 1)
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            text = (failure.get("message") or "") + "\n" + (failure.text or "")
            outcome = TIMEOUT if "Timeout" in (failure.get("message") or "") else FAIL
            results[name] = TestOutcome(name, outcome, seconds, "\n".join(text.strip().splitlines()[-25:]))
        elif skipped is not None:
            results[name] = TestOutcome(name, SKIP, seconds, skipped.get("message") or "")
        else:
            results[name] = TestOutcome(name, PASS, seconds)
    return results


def _pytest(tree: Path, python: Path, bootstrap: str, work: Path, selection: list[str], junit: Path,
            timeout_s: float) -> dict[str, TestOutcome]:
    kafka_root = work / "kafka-root-unused"
    kafka_root.mkdir(exist_ok=True)
    env = {**os.environ, "KAFKA_URI": f"tcp://{bootstrap}", "KAFKA_VERSION": KAFKA_VERSION,
           "KAFKA_ROOT": str(kafka_root)}
    env.pop("PYTHONPATH", None)
    cmd = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "log_level=WARNING",
           f"--timeout={PER_TEST_TIMEOUT_S}", f"--junitxml={junit}", *selection]
    with open(work / "kafka-python.log", "ab") as out:
        try:
            subprocess.run(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s,
                           start_new_session=True)
        except subprocess.TimeoutExpired:
            log(f"kafka-python: the suite's {timeout_s:.0f} s time bound was reached")
    return _outcomes(junit)


def run(tree: Path, python: Path, bootstrap: str, work: Path, paths=TEST_PATHS, budget_s: float = 900,
        retry_failures: bool = True) -> SuiteRun:
    work.mkdir(parents=True, exist_ok=True)
    (tree / "test" / "service.py").write_text(SERVICE_STAND_IN)
    if not (tree / "test" / "__init__.py").exists():
        (tree / "test" / "__init__.py").write_text("")
    suite = SuiteRun("kafka-python")
    started = time.monotonic()
    for outcome in _pytest(tree, python, bootstrap, work, list(paths), work / "kafka-python.xml", budget_s).values():
        suite.add(outcome)
    failed = [n for n, t in suite.tests.items() if t.outcome in (FAIL, TIMEOUT)]
    left = budget_s - (time.monotonic() - started)
    if failed and retry_failures and left > 60:
        node_ids = [f"test/integration/{n.split('::')[0]}.py::{n.split('::', 1)[1]}" for n in failed]
        again = _pytest(tree, python, bootstrap, work, node_ids, work / "kafka-python-retry.xml", left)
        for name in failed:
            if name in again and again[name].outcome == PASS:
                first = suite.tests[name]
                suite.add(TestOutcome(name, FLAKY, first.seconds, f"failed, then passed on a second try:\n{first.detail}"))
    counts = {}
    for t in suite.tests.values():
        counts[t.outcome] = counts.get(t.outcome, 0) + 1
    log(f"kafka-python: {counts}")
    return suite.finish()
