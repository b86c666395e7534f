"""A handful of franz-go's and librdkafka's own integration tests against kop, in both entry formats:
the cheap, every-run slice of `make conformance` (docs/compatibility.md has the full scoreboard).

The tests picked pass against kop and against Apache Kafka, so any failure here is a regression.
Their sources come from package registries into ~/.cache/kop/conformance (scripts/conformance/
sources.py): the franz-go module from the Go module proxy, librdkafka from the rdkafka-sys crate,
built once with Debian's -dev packages (.ci/run installs them; ~2.5 min the first time). When a
registry cannot be reached the test is skipped and says so; a failed build fails it.
"""

from __future__ import annotations

import sys

import pytest

from support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from conformance import FLAKY, PASS, SKIP, franz_go, librdkafka, sources  # noqa: E402

SUITE_ENV = {"KOP_TOPICS_DEFAULT_PARTITIONS": "4"}   # librdkafka's tests need >= 2 partitions


def _source(step):
    try:
        return step()
    except sources.FetchError as exc:
        pytest.skip(f"suite source could not be fetched from its registry: {exc}")


def _failures(run) -> dict[str, str]:
    return {name: f"{t.outcome}\n{t.detail}" for name, t in run.tests.items()
            if t.outcome not in (PASS, SKIP, FLAKY)}


@pytest.fixture(scope="module")
def franz_go_binary():
    return _source(sources.franz_go_test_binary)


@pytest.fixture(scope="module")
def librdkafka_tests():
    return _source(sources.librdkafka_tests_dir)


def test_franz_go_smoke(gateways, entry_format, franz_go_binary, tmp_path):
    gw = gateways("--entry-format", entry_format, env=SUITE_ENV)
    run = franz_go.run(franz_go_binary, gw.bootstrap, tmp_path, names=franz_go.SMOKE, isolated={},
                       budget_s=240)
    assert set(franz_go.SMOKE) <= set(run.tests), f"tests with no result: {set(franz_go.SMOKE) - set(run.tests)}"
    assert not _failures(run), "\n\n".join(f"{n}: {d}" for n, d in _failures(run).items())


def test_librdkafka_smoke(gateways, entry_format, librdkafka_tests, tmp_path):
    gw = gateways("--entry-format", entry_format, env=SUITE_ENV)
    run = librdkafka.run(librdkafka_tests, gw.bootstrap, tmp_path, test_ids=librdkafka.SMOKE, budget_s=300)
    assert set(librdkafka.SMOKE) <= set(run.tests), f"tests with no result: {set(librdkafka.SMOKE) - set(run.tests)}"
    assert not _failures(run), "\n\n".join(f"{n}: {d}" for n, d in _failures(run).items())
