"""Command line: ``PYTHONPATH=scripts python -m conformance {fetch,run,report}`` (``make conformance``).

``run`` fetches and builds what is missing, starts a Pulsar if none answers (and stops it after),
then for each target in turn (Kafka, kop-pulsar, kop-kafka) starts it, runs every suite against it
within the suite's time bound, and stops it; at the end it writes the scoreboard. A kop that dies
during a suite is reported as such (the suites' failures after it say nothing about the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from . import CONFLUENT_KAFKA_VERSION, ROOT, log
from . import franz_go, java_compat, kafka_python, librdkafka, report, sources
from .results import SuiteRun, TestOutcome
from .targets import RUN_DIR, TARGETS, Target, pulsar_answers

# Time bound of each suite against one target, seconds (the whole run stays under 45 minutes).
BUDGETS = {"franz-go": 600, "librdkafka": 720, "kafka-python": 480, "kafka-java": 180}
SUITE_ORDER = ("franz-go", "librdkafka", "kafka-python", "kafka-java")


def confluent_skip_reason() -> str:
    """Why confluent-kafka-python's integration tests cannot run: decided from its sdist."""
    tree = sources.confluent_kafka_tree()
    tests = [p for p in tree.rglob("test*") if p.is_dir() and "kafkatest" not in p.parts]
    if tests:
        return ""
    return (f"the PyPI sdist of confluent-kafka {CONFLUENT_KAFKA_VERSION} ships no tests/ directory (only "
            "src/confluent_kafka/kafkatest, the clients Kafka's system tests drive), so there is no harness "
            "to point at a broker; confluent-kafka is librdkafka underneath, which the librdkafka suite covers")


def run_suite(suite: str, target: Target, paths: dict) -> SuiteRun:
    work = RUN_DIR / "work" / target.name
    budget = BUDGETS[suite]
    if suite == "franz-go":
        return franz_go.run(paths["franz-go"], target.bootstrap, work, budget_s=budget)
    if suite == "librdkafka":
        return librdkafka.run(paths["librdkafka"], target.bootstrap, work, budget_s=budget)
    if suite == "kafka-python":
        tree, python = paths["kafka-python"]
        return kafka_python.run(tree, python, target.bootstrap, work, budget_s=budget)
    return java_compat.run(paths["kafka-java"], target.bootstrap, work, budget_s=budget)


def _merged(runs: dict[str, dict[str, SuiteRun]], args) -> tuple[dict, list]:
    """The committed scoreboard's results, with those of this run (its targets x suites) put in."""
    old = json.loads(report.JSON_PATH.read_text())
    merged: dict[str, dict[str, SuiteRun]] = {}
    for suite, entry in old["suites"].items():
        for target, seconds in entry["seconds"].items():
            run = SuiteRun(suite, seconds=seconds)
            for name, test in entry["tests"].items():
                outcome = test["outcomes"].get(target, "not run")
                run.add(TestOutcome(name, outcome, 0.0, test.get("detail", {}).get(target, ""), test.get("title", "")))
            merged.setdefault(target, {})[suite] = run
    for target, suites in runs.items():
        merged.setdefault(target, {}).update(suites)
    note = old.get("merged", []) + [{"generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                     "targets": args.targets, "suites": args.suites,
                                     "onto": old.get("generated")}]
    return merged, note


def cmd_run(args) -> int:
    started = time.monotonic()
    skipped: dict[str, str] = {}
    paths: dict = {}
    steps = {"franz-go": sources.franz_go_test_binary, "librdkafka": sources.librdkafka_tests_dir,
             "kafka-python": sources.kafka_python_tree, "kafka-java": sources.kafka_tools}
    for suite in args.suites:
        try:
            paths[suite] = steps[suite]()
        except (sources.SourceError, OSError, subprocess.TimeoutExpired) as exc:
            skipped[suite] = f"could not be fetched or built: {exc}"
    try:
        reason = confluent_skip_reason()
    except (sources.SourceError, OSError) as exc:
        reason = f"its sdist could not be fetched: {exc}"
    skipped["confluent-kafka-python"] = reason or "its harness needs trivup (a cluster it starts itself)"
    log(f"confluent-kafka-python: not run: {skipped['confluent-kafka-python']}")

    started_pulsar = False
    if any(t.startswith("kop-") for t in args.targets) and not pulsar_answers():
        log("no Pulsar answers: starting one in .run/pulsar-conformance")
        env = {**os.environ, "KOP_RUN_DIR": str(ROOT / ".run" / "pulsar-conformance")}
        subprocess.run([str(ROOT / "scripts" / "pulsar.sh"), "start"], check=True, env=env)
        started_pulsar = True
    runs: dict[str, dict[str, SuiteRun]] = {}
    try:
        for name in args.targets:
            runs[name] = {}
            with Target(name) as target:
                for suite in args.suites:
                    if suite in skipped:
                        continue
                    t0 = time.monotonic()
                    log(f"{suite} against {name} (time bound {BUDGETS[suite]} s)")
                    run = run_suite(suite, target, paths)
                    if not target.alive():
                        log(f"!!! {name} died during {suite}: see {target.dir}")
                        run.add(TestOutcome("(target died)", "fail", 0.0, f"{name} was no longer running after {suite}"))
                        runs[name][suite] = run
                        break
                    runs[name][suite] = run
                    log(f"{suite} against {name}: {time.monotonic() - t0:.0f} s")
    finally:
        if started_pulsar:
            env = {**os.environ, "KOP_RUN_DIR": str(ROOT / ".run" / "pulsar-conformance")}
            subprocess.run([str(ROOT / "scripts" / "pulsar.sh"), "stop"], check=False, env=env)
    if args.merge:
        runs, note = _merged(runs, args)
    data = report.build(runs, skipped, time.monotonic() - started)
    if args.merge:   # the header stays the full run's; the note says what was run again, when, on what
        previous = json.loads(report.JSON_PATH.read_text())
        note[-1]["kop_revision"] = data["kop_revision"]
        data.update(generated=previous["generated"], kop_revision=previous["kop_revision"],
                    total_seconds=previous.get("total_seconds", 0), merged=note)
    if args.write:
        report.write(data)
        log(f"wrote {report.JSON_PATH.relative_to(ROOT)} and {report.MD_PATH.relative_to(ROOT)}")
    print(report.markdown(data).split("\nKnown deviations")[0])
    log(f"total {time.monotonic() - started:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="fetch and build every suite into the cache (~/.cache/kop/conformance)")
    run = sub.add_parser("run", help="run the suites against the targets and write the scoreboard")
    run.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    run.add_argument("--suites", nargs="+", default=list(SUITE_ORDER), choices=SUITE_ORDER)
    run.add_argument("--no-write", dest="write", action="store_false",
                     help="print the summary only; leave the committed scoreboard alone")
    run.add_argument("--merge", action="store_true",
                     help="put this run's targets x suites into the committed scoreboard, keeping the rest")
    sub.add_parser("report", help="redraw docs/compatibility.md from benchmarks/results/conformance.json")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        problems = sources.fetch_all()
        return 1 if problems else 0
    if args.command == "report":
        report.redraw()
        return 0
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
