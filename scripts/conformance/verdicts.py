"""Classify every test whose outcome on kop differs from its outcome on Kafka.

A difference is one of:

- ``known deviation``: kop differs from Kafka on purpose or for a documented reason, each named in
  DEVIATIONS with the README section that explains it (and the issue that will remove it, if any).
  KNOWN maps the tests to them; every entry was checked against the test's own failure output
  (docs/compatibility.md shows that output), not assumed from the test's name.
- ``open defect``: fails (or skips) on kop and passes on Kafka with no documented reason: kop's bug.
- ``flaky``: failed once and passed on its second try somewhere, and failed hard nowhere.
- ``fails on Kafka``: fails against the reference broker too (on this machine, with this broker's
  settings), so it says nothing about kop.
- ``skipped on Kafka``, ``not run everywhere``: no comparison possible.

Tests whose outcome is the same on every target get ``same``.
"""

from __future__ import annotations

from . import FAIL, FLAKY, NOT_RUN, PASS, SKIP, TIMEOUT

README_KNOWN = "../README.md#known-differences-from-apache-kafka"

DEVIATIONS = {
    "kip-848": {
        "title": "no KIP-848 (next-generation) consumer groups",
        "readme": README_KNOWN,
        "issue": None,
    },
    "publish-time-lookup": {
        "title": "ListOffsets by timestamp searches Pulsar's publish time (as on LogAppendTime topics), "
                 "not the records' CreateTime",
        "readme": README_KNOWN,
        "issue": None,
    },
    "replicas-are-pulsars": {
        "title": "one replica per partition in Metadata; replicas, log dirs and the KRaft quorum are "
                 "Pulsar's (BookKeeper's) business, so the APIs managing them are not served",
        "readme": README_KNOWN,
        "issue": None,
    },
    "broker-configs": {
        "title": "broker configs are read-only and only four are shown (README: Topic configs are Pulsar policies)",
        "readme": "../README.md#topic-configs-are-pulsar-policies",
        "issue": None,
    },
    "no-topic-ids": {
        "title": "no topic ids: Produce and Fetch are served up to v12, the last versions that name topics",
        "readme": README_KNOWN,
        "issue": None,
    },
    "no-acls": {
        "title": "no Kafka ACLs: Pulsar's own authorization decides (README: Security and tenancy)",
        "readme": "../README.md#security-and-tenancy",
        "issue": None,
    },
}

# (suite, test) -> deviation; a test listed by its top-level name covers its subtests. Packed offsets
# and "no transactions" were deviations until contiguous offsets (issue 17) and transactions (issue 18)
# landed: the tests they covered (franz-go's TestGroupETL, TestAddRemovePartitions, TestTxnEtl;
# librdkafka's 0015, 0029, 0031, 0034, 0054, 0061, 0130, 0137; kafka-python's offset and transaction
# tests) are expected to pass now, and a failure of one is an open defect.
KNOWN = {
    # produces records stamped 2 s and 1 s in the past, then looks up the one in between
    ("kafka-python", "test_consumer_integration::test_kafka_consumer_offsets_for_time"): "publish-time-lookup",
    # stamps its records 1234 and 999999999999 (CreateTime), then "expected offset 1 for timestamp
    # 999999999999, got 0": the lookup finds the records' publish time, not their stamp
    ("librdkafka", "0054"): "publish-time-lookup",
    # kafka-python admin tests of APIs that manage replicas, log dirs and the controller quorum.
    **{("kafka-python", f"test_admin_integration::{name}"): "replicas-are-pulsars" for name in (
        "test_elect_leaders", "test_describe_log_dirs", "test_alter_replica_log_dirs",
        "test_describe_metadata_quorum", "test_alter_partition_reassignments",
        "test_list_partition_reassignments")},
    # infers the broker's version from ApiVersions: 4.1 is "Produce v13" (topic ids), and kop serves v12 (so 4.0)
    ("kafka-python", "test_consumer_integration::test_kafka_version_infer"): "no-topic-ids",
    ("kafka-python", "test_admin_integration::test_describe_configs_broker_resource_returns_configs"): "broker-configs",
    ("kafka-python", "test_admin_integration::test_describe_configs_mixed_resources_returns_configs"): "broker-configs",
}

GOOD = (PASS, FLAKY)
BAD = (FAIL, TIMEOUT)


def known_deviation(suite: str, test: str) -> str | None:
    if "/848" in test:                       # franz-go's KIP-848 variants skip themselves on kop
        return "kip-848"
    return KNOWN.get((suite, test)) or KNOWN.get((suite, test.split("/")[0]))


def classify(suite: str, test: str, outcomes: dict[str, str]) -> tuple[str, str | None]:
    """(verdict, deviation id or None) for one test's {target: outcome}."""
    kafka = outcomes.get("kafka", NOT_RUN)
    kop = {t: o for t, o in outcomes.items() if t != "kafka"}
    if len(set(outcomes.values())) == 1:
        return ("fails on Kafka", None) if kafka in BAD else ("same", None)
    if kafka in BAD:
        return "fails on Kafka", None
    kop_bad = [o for o in kop.values() if o in BAD or (o == SKIP and kafka in GOOD)]
    if kafka in GOOD and kop_bad:
        deviation = known_deviation(suite, test)
        return ("known deviation", deviation) if deviation else ("open defect", None)
    if FLAKY in outcomes.values():
        return "flaky", None
    if kafka == SKIP:
        return "skipped on Kafka", None
    if NOT_RUN in outcomes.values():
        return "not run everywhere", None
    return "same", None
