"""librdkafka's own tests/ (the C and C++ test-runner), a single-broker quick pass.

Run as librdkafka's CI runs them against a real cluster: ``tests/test.conf`` names the broker
(``RDKAFKA_TEST_CONF``), ``TEST_KAFKA_VERSION`` says which features it has, and
``./run-test.sh -Q -E -L -p1`` runs the tests named by ``TESTS`` in quick mode (-Q), without the
socket-emulation (-E) and local/mock-cluster (-L) tests, one at a time (-p1).

One runner process per test id: the runner aborts every remaining test once one of them hits its
own timeout, so sharing one would blame later tests for an earlier one's hang.

Quick mode skips every sub-test not marked SUB_TEST_QUICK, and some tests (0018, for one) have
none: they "pass" in 0.000 s having done nothing. Such a test is run again without -Q, in full,
and that result counts (its title says "full mode").

QUICK_PASS is the list of broker-backed tests that fit one broker and a few minutes, derived from
tests/test.c's table: every test that needs a broker, less those that need SSL or SASL
(0097, 0115, 0119, 0126, 0135, 0142), transactions (0098 also drives a Java program, 0103, 0129),
ACLs (0081 also), Kafka's command-line tools (0052, 0109 run kafka-topics), several brokers or racks
(0101), topic deletion without auto-creation ("noautocreate" scenarios: 0045 variants, 0107,
0111), log compaction (0077), settings removed from Kafka 4
(0092, message.format.version), the slow ones (0026, 0038, 0042, 0044, 0059, 0089, 0091, 0093,
0102, 0113, 0118, 0122, 0123, minutes each), and the mock-cluster tests filed as broker tests
(0139, 0150). test.timeout.multiplier=2 gives each test twice its own deadline on this machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from . import FAIL, FLAKY, NOT_RUN, PASS, SKIP, TIMEOUT, log
from .results import SuiteRun, TestOutcome

QUICK_PASS = (
    "0001 0002 0003 0005 0007 0008 0011 0012 0013 0014 0015 0016 0017 0018 0019 0020 0021 0022 "
    "0029 0030 0031 0033 0034 0035 0036 0039 0040 0041 0048 0050 0051 0053 0054 0056 0057 "
    "0060 0061 0063 0064 0065 0067 0069 0070 0073 0082 0083 0084 0085 0086 0090 0099 0110 "
    "0112 0114 0125 0127 0130 0132 0137 0140 0153").split()
SMOKE = ("0001", "0012", "0013", "0017", "0070")
TEST_TIMEOUT_S = 300          # outer bound for one test id (its own timeouts are shorter)
KAFKA_VERSION_FOR_TESTS = "3.9.0"  # the newest version tests/ knows of its feature table
_ROW = re.compile(r"^\|\s+(\d{4}[\w-]*)\s+\|\s+(PASSED|FAILED|SKIPPED|RUNNING|NOT STARTED)\s+\|\s+([\d.]+)s")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _write_conf(work: Path, bootstrap: str) -> Path:
    conf = work / "librdkafka-test.conf"
    conf.write_text(f"bootstrap.servers={bootstrap}\ntest.timeout.multiplier=2\ntest.topic.random=true\n")
    return conf


def _run_one(tests_dir: Path, test_id: str, conf: Path, log_dir: Path,
             quick: bool = True) -> tuple[str, float, str, str]:
    """(outcome, seconds, the output's tail, the tests' names) of one test id in its own runner.
    A pass that did nothing (quick mode skipped all of it) comes back as SKIP, title "vacuous"."""
    env = {**os.environ, "TESTS": test_id, "RDKAFKA_TEST_CONF": str(conf),
           "TEST_KAFKA_VERSION": KAFKA_VERSION_FOR_TESTS}
    start = time.monotonic()
    flags = ["-Q", "-E", "-L", "-p1"] if quick else ["-E", "-L", "-p1"]
    try:
        proc = subprocess.run(["./run-test.sh", *flags], cwd=tests_dir, env=env,
                              capture_output=True, text=True, errors="replace", timeout=TEST_TIMEOUT_S,
                              start_new_session=True)
        output, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return TIMEOUT, time.monotonic() - start, _tail(output), ""
    seconds = time.monotonic() - start
    output = _ANSI.sub("", output)
    (log_dir / f"{test_id}{'' if quick else '-full'}.log").write_text(output)
    matches = [m for line in output.splitlines() if (m := _ROW.match(line.strip()))]
    rows = [m.group(2) for m in matches]
    title = " ".join(m.group(1) for m in matches if m.group(2) != "SKIPPED") or test_id
    if any(r == "FAILED" for r in rows) or (code != 0 and not rows):
        return FAIL, seconds, _tail(output), title
    if rows and all(r == "SKIPPED" for r in rows):
        return SKIP, seconds, _tail(output), title
    if any(r == "PASSED" for r in rows) and code == 0:
        ran = [m for m in matches if m.group(1) != "<MAIN>" and m.group(2) == "PASSED"]
        if quick and ran and all(float(m.group(3)) == 0.0 for m in ran):
            return SKIP, seconds, "", "vacuous"
        return PASS, seconds, "", title
    return FAIL, seconds, _tail(output), title


def _tail(output: str, lines: int = 12) -> str:
    """Each "TEST FAILURE" with the two lines naming where and why, then the output's last lines."""
    keep = [l for l in output.splitlines() if l.strip() and not l.startswith(("|", "#=", "fatal: not a git"))]
    why: list[str] = []
    for i, line in enumerate(keep):
        if "TEST FAILURE" in line and "<MAIN>" not in line:
            why += keep[i + 1:i + 3]
    return "\n".join((why[:12] + ["..."] if why else []) + keep[-lines:])


def run(tests_dir: Path, bootstrap: str, work: Path, test_ids=QUICK_PASS, budget_s: float = 1200,
        retry_failures: bool = True) -> SuiteRun:
    work.mkdir(parents=True, exist_ok=True)
    conf = _write_conf(work, bootstrap)
    log_dir = work / "librdkafka-logs"
    log_dir.mkdir(exist_ok=True)
    suite = SuiteRun("librdkafka")
    deadline = time.monotonic() + budget_s
    for test_id in test_ids:
        if time.monotonic() > deadline:
            suite.add(TestOutcome(test_id, NOT_RUN, 0.0, f"suite time bound ({budget_s:.0f} s) reached"))
            continue
        outcome, seconds, detail, title = _run_one(tests_dir, test_id, conf, log_dir)
        if title == "vacuous":
            outcome, seconds2, detail, title = _run_one(tests_dir, test_id, conf, log_dir, quick=False)
            seconds, title = seconds + seconds2, f"{title} (full mode)"
        if outcome in (FAIL, TIMEOUT) and retry_failures and time.monotonic() < deadline:
            again, seconds2, _, _ = _run_one(tests_dir, test_id, conf, log_dir, quick="full mode" not in title)
            if again == PASS:
                outcome, detail = FLAKY, f"failed, then passed on a second try:\n{detail}"
            seconds += seconds2
        log(f"librdkafka {test_id}: {outcome} ({seconds:.0f} s)")
        suite.add(TestOutcome(test_id, outcome, round(seconds, 1), detail, title))
    return suite.finish()
