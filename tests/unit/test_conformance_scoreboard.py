"""The conformance scoreboard's own logic (scripts/conformance): verdicts, the report, and reading
librdkafka's runner output, on made-up runs (the suites themselves run in `make conformance`)."""

from __future__ import annotations

import sys

from support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from conformance import FAIL, FLAKY, PASS, SKIP, TIMEOUT, librdkafka, report, verdicts  # noqa: E402
from conformance.results import SuiteRun, TestOutcome  # noqa: E402


def _verdict(suite, test, kafka, pulsar, kafka_format):
    return verdicts.classify(suite, test, {"kafka": kafka, "kop-pulsar": pulsar, "kop-kafka": kafka_format})


def test_verdicts():
    assert _verdict("franz-go", "TestPing", PASS, PASS, PASS) == ("same", None)
    assert _verdict("franz-go", "TestGroupETL/range", PASS, FAIL, FAIL) == ("open defect", None)  # offsets are contiguous
    assert _verdict("kafka-python", "test_admin_integration::test_describe_log_dirs", PASS, FAIL, FAIL) == \
        ("known deviation", "replicas-are-pulsars")
    assert _verdict("franz-go", "TestGroupSimple/848", PASS, SKIP, SKIP) == ("known deviation", "kip-848")
    assert _verdict("franz-go", "TestTxnEtl", PASS, TIMEOUT, TIMEOUT) == ("open defect", None)  # transactions are served
    assert _verdict("librdkafka", "0001", PASS, PASS, FAIL) == ("open defect", None)
    assert _verdict("librdkafka", "0002", FAIL, FAIL, PASS) == ("fails on Kafka", None)
    assert _verdict("librdkafka", "0003", FLAKY, PASS, PASS) == ("flaky", None)
    assert _verdict("librdkafka", "0004", PASS, SKIP, PASS) == ("open defect", None)


def test_every_known_deviation_names_a_readme_section():
    readme = (ROOT / "README.md").read_text()
    for deviation in set(verdicts.KNOWN.values()) | {"kip-848"}:
        anchor = verdicts.DEVIATIONS[deviation]["readme"].split("#", 1)[1]
        headings = {line.lstrip("#").strip().lower().replace(" ", "-") for line in readme.splitlines()
                    if line.startswith("## ")}
        assert anchor in headings, (deviation, anchor)


def test_report_summary_and_markdown():
    def run(suite, outcomes):
        r = SuiteRun(suite)
        for name, outcome in outcomes.items():
            r.add(TestOutcome(name, outcome, 1.0, "" if outcome == PASS else "boom"))
        return r.finish()
    known = "test_admin_integration::test_describe_log_dirs"  # a replicas-are-pulsars deviation
    runs = {"kafka": {"kafka-python": run("kafka-python", {"t::ok": PASS, known: PASS, "t::bad": PASS})},
            "kop-pulsar": {"kafka-python": run("kafka-python", {"t::ok": PASS, known: FAIL, "t::bad": FAIL})},
            "kop-kafka": {"kafka-python": run("kafka-python", {"t::ok": PASS, known: FAIL, "t::bad": PASS})}}
    data = report.build(runs, {"confluent-kafka-python": "no tests in the sdist"}, 60)
    row = next(r for r in data["summary"] if r["suite"] == "kafka-python")
    assert (row["tests"], row["passing_kafka"], row["passing_kop_pulsar"], row["passing_kop_kafka"]) == (3, 3, 1, 2)
    assert (row["known_deviations"], row["open_defects"]) == (1, 1)
    text = report.markdown(data)
    assert "| kafka-python | 3 | 3 | 1 / 2 | 1 | 1 |" in text
    assert "no tests in the sdist" in text and "**open defect**" in text
    assert data["suites"]["kafka-python"]["tests"]["t::bad"]["detail"] == {"kop-pulsar": "boom"}


def test_librdkafka_summary_rows():
    rows = ["| <MAIN>                                   |     PASSED |   0.202s |",
            "| 0018_cgrp_term                           |     PASSED |   0.000s |",
            "| 0011_produce_batch                       |     FAILED |   3.408s |"]
    matches = [m for line in rows if (m := librdkafka._ROW.match(line))]
    assert [(m.group(1), m.group(2), m.group(3)) for m in matches] == [
        ("0018_cgrp_term", "PASSED", "0.000"), ("0011_produce_batch", "FAILED", "3.408")]
