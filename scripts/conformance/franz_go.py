"""franz-go's pkg/kgo integration tests, run as franz-go's own CI runs them against a broker.

The tests find the broker through ``KGO_SEEDS`` (default 127.0.0.1:9092, so it is always set);
``KGO_TEST_RF=1`` because every target has one broker, and ``KGO_TEST_RECORDS=10000`` instead of
the upstream 500,000 keeps the ETL tests at about a minute. Only the tests that need a broker
run (BROKER_TESTS; the other ~75 in pkg/kgo are offline unit tests); variants that need a newer
protocol skip themselves after ApiVersions (``*/848``: KIP-848 groups, the share-group tests:
Kafka 4.2's ShareFetch), so passes and skips are compared, not only failures.

TestTxnEtl runs in a process of its own with a short time bound: without transactions it waits
for them until the suite's own timeout, which would hold every other test hostage.

The test binary is run under ``go tool test2json`` so each test's and subtest's result and output
arrive as JSON events rather than parsed text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from . import FAIL, FLAKY, NOT_RUN, PASS, SKIP, TIMEOUT, log
from .results import SuiteRun, TestOutcome
from .sources import go_env

BROKER_TESTS = (
    "TestAddRemovePartitions TestClient_Produce TestClient_ProduceLargeMessages TestConsumeRegex "
    "TestConsumeTopicRetrieval TestConsumeTopicRetrieval_Many TestDirectPartitionPurge TestGroupETL "
    "TestGroupSimple TestHookPollStart TestIssue1034 TestIssue325 TestIssue337 TestIssue434 "
    "TestIssue523 TestIssue648 TestIssue769 TestIssue810 TestIssue831 TestIssue865 "
    "TestIssueProduceSyncManualPartitionNegativeDoesNotPanic TestPauseIssue489 TestPauseIssueOct2023 "
    "TestPing TestPooling TestShareGroup TestUnknownGroupOffsetFetchPinned").split()
ISOLATED = {"TestTxnEtl": 120}   # test -> its own time bound, seconds
_COMPLAINT = re.compile(r"\w+_test\.go:\d+: ")
SMOKE = ("TestPing", "TestClient_Produce", "TestConsumeRegex", "TestIssue325", "TestGroupSimple")


def _env(bootstrap: str) -> dict[str, str]:
    return {**os.environ, **go_env(), "KGO_SEEDS": bootstrap, "KGO_TEST_RF": "1",
            "KGO_TEST_RECORDS": "10000"}


def _run(binary: Path, bootstrap: str, names, timeout_s: float, log_path: Path) -> dict[str, TestOutcome]:
    pattern = "^(" + "|".join(names) + ")$"
    cmd = ["go", "tool", "test2json", "-t", str(binary), "-test.v=test2json", "-test.count=1",
           f"-test.run={pattern}", f"-test.timeout={int(timeout_s)}s"]
    try:
        proc = subprocess.run(cmd, cwd=binary.parent, env=_env(bootstrap), capture_output=True,
                              text=True, errors="replace", timeout=timeout_s + 60, start_new_session=True)
        stdout = proc.stdout
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    log_path.write_text(stdout)
    started: dict[str, float] = {}
    output: dict[str, list[str]] = {}
    results: dict[str, TestOutcome] = {}
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        test, action = event.get("Test"), event.get("Action")
        if not test:
            continue
        if action == "run":
            started[test] = time.monotonic()
        elif action == "output":
            output.setdefault(test, []).append(event.get("Output", "").rstrip("\n"))
        elif action in ("pass", "fail", "skip"):
            outcome = {"pass": PASS, "fail": FAIL, "skip": SKIP}[action]
            detail = "" if outcome == PASS else _tail(output.get(test, []))
            results[test] = TestOutcome(test, outcome, round(event.get("Elapsed", 0.0), 1), detail)
    for test in started:                       # ran, never finished: the binary's timeout hit
        if test not in results:
            results[test] = TestOutcome(test, TIMEOUT, 0.0, _tail(output.get(test, []))
                                        or f"still running at the {timeout_s:.0f} s time bound")
    return results


def _tail(lines: list[str], keep: int = 25) -> str:
    """The test's own complaints (t.Errorf/t.Fatalf lines, "x_test.go:N: ...") first, then its last lines:
    the client's INFO logging would bury them otherwise."""
    useful = [l for l in lines if l.strip() and not l.lstrip().startswith(("=== RUN", "=== PAUSE", "=== CONT"))]
    complaints = [l.strip() for l in useful if _COMPLAINT.search(l) and "completed in" not in l]
    if complaints:
        return "\n".join(complaints[:12] + ["..."] + [l for l in useful[-5:] if l.strip() not in complaints])
    return "\n".join(useful[-keep:])


def run(binary: Path, bootstrap: str, work: Path, names=BROKER_TESTS, isolated=ISOLATED,
        budget_s: float = 900, retry_failures: bool = True) -> SuiteRun:
    work.mkdir(parents=True, exist_ok=True)
    suite = SuiteRun("franz-go")
    for outcome in _run(binary, bootstrap, names, budget_s, work / "franz-go.jsonl").values():
        suite.add(outcome)
    for name in names:
        if name not in suite.tests:
            suite.add(TestOutcome(name, NOT_RUN, 0.0, "no result: the run stopped before it"))
    failed = sorted({name.split("/")[0] for name, t in suite.tests.items() if t.outcome in (FAIL, TIMEOUT)})
    if failed and retry_failures:
        again = _run(binary, bootstrap, failed, min(budget_s, 300), work / "franz-go-retry.jsonl")
        for name in failed:
            if name in again and again[name].outcome == PASS:
                first = suite.tests[name]
                suite.add(TestOutcome(name, FLAKY, first.seconds,
                                      f"failed, then passed on a second try:\n{first.detail}"))
    for name, bound in isolated.items():
        for outcome in _run(binary, bootstrap, [name], bound, work / f"franz-go-{name}.jsonl").values():
            suite.add(outcome)
        if name not in suite.tests:
            suite.add(TestOutcome(name, TIMEOUT, float(bound), f"no result within its {bound} s time bound"))
    for name, t in sorted(suite.tests.items()):
        if "/" not in name:
            log(f"franz-go {name}: {t.outcome} ({t.seconds:.0f} s)")
    return suite.finish()
