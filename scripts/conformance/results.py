"""What one suite did against one target: per-test outcomes and the time it took.

Kept apart from the suites so every runner hands back the same shape, and the report and the
verdicts never parse a suite's own output format.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


@dataclass
class TestOutcome:
    name: str              # the suite's own test name (franz-go: TestX or TestX/sub; librdkafka: the id)
    outcome: str           # conformance.PASS, FAIL, SKIP, FLAKY, TIMEOUT or NOT_RUN
    seconds: float = 0.0
    detail: str = ""       # the failure's evidence: the suite's own last output lines
    title: str = ""        # a longer name where the suite has one (librdkafka: 0001_multiobj)

    __test__ = False       # not a pytest test class


@dataclass
class SuiteRun:
    suite: str
    tests: dict[str, TestOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    skipped_reason: str = ""   # the whole suite was not run here, and why
    started: float = field(default_factory=time.monotonic)

    def add(self, outcome: TestOutcome) -> None:
        self.tests[outcome.name] = outcome

    def finish(self) -> "SuiteRun":
        self.seconds = round(time.monotonic() - self.started, 1)
        return self

    def to_json(self) -> dict:
        return {"seconds": self.seconds, "skipped_reason": self.skipped_reason,
                "tests": {name: {k: v for k, v in asdict(t).items() if k != "name" and v != ""}
                          for name, t in self.tests.items()}}
