"""Fetch the suites from package registries at pinned versions, and build them, into CACHE.

Each source comes through its registry's ordinary client, so nothing third-party is committed and
nothing is downloaded from anywhere else:

- franz-go: the Go module proxy serves the module zip with its _test.go files (``go mod download``);
  a writable copy gets its kgo test binary compiled once (``go test -c``), then every target runs
  that binary.
- librdkafka: crates.io's ``rdkafka-sys`` vendors librdkafka with its ``tests/`` directory; a
  throw-away crate that depends on it is ``cargo fetch``-ed, and a copy is built with Debian's -dev
  packages (``./configure && make libs && make -C tests build``, ~135 s on 2 cores, once).
- kafka-python, confluent-kafka: their PyPI sdists (``pip download --no-binary``); kafka-python's
  test harness runs in a venv of its own, next to the sdist.
- Kafka's ClientCompatibilityTest: in kafka-tools-4.1.2.jar, which scripts/kafka-tools.sh fetches
  from Maven Central for the rest of kop's tests anyway.

Every step leaves a stamp file, so a second run costs nothing; a failed step raises SourceError
with the command's last output lines: FetchError when a registry could not be reached (the smoke
test in `make test` skips then, saying so), BuildError for anything else (it fails then).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from . import (CACHE, CONFLUENT_KAFKA_VERSION, FRANZ_GO_VERSION, KAFKA_PYTHON_VERSION,
               LIBRDKAFKA_VERSION, RDKAFKA_SYS_VERSION, ROOT, log)


class SourceError(RuntimeError):
    """A suite could not be fetched or built; the message says which command failed and why."""


class FetchError(SourceError):
    """A package registry did not deliver the suite's source."""


class BuildError(SourceError):
    """The source is here but could not be built (or a needed toolchain is missing)."""


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 1200, error: type[SourceError] = BuildError) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise error(f"{' '.join(cmd)} (in {cwd}) did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise error(f"{' '.join(cmd)} (in {cwd}) exited {proc.returncode}:\n{tail}")
    return proc.stdout


# -- franz-go ---------------------------------------------------------------------------------

def go_env() -> dict[str, str]:
    """Keep the module cache (and so the downloaded suite) under CACHE; never switch toolchains."""
    return {"GOMODCACHE": str(CACHE / "gomod"), "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local",
            "GOPATH": str(CACHE / "gopath")}


def franz_go_test_binary() -> Path:
    """The compiled pkg/kgo test binary of franz-go FRANZ_GO_VERSION (built once)."""
    tree = CACHE / f"franz-go-{FRANZ_GO_VERSION}"
    binary = tree / "pkg" / "kgo" / "kgo.test"
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise BuildError("no `go` on PATH: franz-go's tests need a Go toolchain")
    log(f"fetching franz-go {FRANZ_GO_VERSION} from the Go module proxy")
    out = _run(["go", "mod", "download", "-json", f"github.com/twmb/franz-go@{FRANZ_GO_VERSION}"],
               cwd=CACHE, env=go_env(), error=FetchError)
    import json
    module_dir = Path(json.loads(out)["Dir"])
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(module_dir, tree)
    for path in tree.rglob("*"):                       # the module cache is read-only by design
        path.chmod(path.stat().st_mode | 0o200)
    log("compiling franz-go's pkg/kgo tests (go test -c)")
    _run(["go", "test", "-c", "-o", str(binary.name), "."], cwd=binary.parent, env=go_env())
    return binary


# -- librdkafka -------------------------------------------------------------------------------

def _rdkafka_sys_source() -> Path:
    crate = CACHE / "rdkafka-fetch"
    (crate / "src").mkdir(parents=True, exist_ok=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "kop-rdkafka-fetch"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
        f'[dependencies]\nrdkafka-sys = {{ version = "={RDKAFKA_SYS_VERSION}", default-features = false }}\n')
    (crate / "src" / "main.rs").write_text("fn main() {}\n")
    env = {"CARGO_HOME": str(CACHE / "cargo")}
    found = list((CACHE / "cargo" / "registry" / "src").glob(f"*/rdkafka-sys-{RDKAFKA_SYS_VERSION}/librdkafka"))
    if not found:
        if shutil.which("cargo") is None:
            raise BuildError("no `cargo` on PATH: librdkafka's source comes from crates.io (rdkafka-sys)")
        log(f"fetching rdkafka-sys {RDKAFKA_SYS_VERSION} (librdkafka {LIBRDKAFKA_VERSION}) from crates.io")
        _run(["cargo", "fetch", "--quiet"], cwd=crate, env=env, timeout=600, error=FetchError)
        found = list((CACHE / "cargo" / "registry" / "src").glob(f"*/rdkafka-sys-{RDKAFKA_SYS_VERSION}/librdkafka"))
    if not found:
        raise FetchError(f"cargo fetch left no rdkafka-sys-{RDKAFKA_SYS_VERSION}/librdkafka in {CACHE / 'cargo'}")
    return found[0]


def librdkafka_tests_dir() -> Path:
    """librdkafka's tests/ with test-runner built (once; ~135 s on 2 cores)."""
    tree = CACHE / f"librdkafka-{LIBRDKAFKA_VERSION}"
    stamp = tree / ".kop-built"
    if stamp.exists():
        return tree / "tests"
    source = _rdkafka_sys_source()
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(source, tree)
    log(f"building librdkafka {LIBRDKAFKA_VERSION} and its test-runner (~135 s on 2 cores)")
    jobs = f"-j{os.cpu_count() or 2}"
    # --install-deps=no: mklove must use Debian's -dev packages, never download its own.
    _run(["./configure", "--install-deps=no"], cwd=tree, timeout=600)
    _run(["make", jobs, "libs"], cwd=tree, timeout=1800)
    _run(["make", jobs, "-C", "tests", "build"], cwd=tree, timeout=1800)
    stamp.touch()
    return tree / "tests"


# -- Python clients ---------------------------------------------------------------------------

def _sdist(name: str, version: str) -> Path:
    """The unpacked PyPI sdist of name==version."""
    sdists = CACHE / "sdists"
    dist_name = name.replace("-", "_")
    unpacked = sdists / f"{dist_name}-{version}"
    if unpacked.exists():
        return unpacked
    sdists.mkdir(parents=True, exist_ok=True)
    log(f"fetching the {name} {version} sdist from PyPI")
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
          "-d", str(sdists), f"{name}=={version}"], timeout=600, error=FetchError)
    archive = sdists / f"{dist_name}-{version}.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extractall(sdists, filter="data")
    return unpacked


def kafka_python_tree() -> tuple[Path, Path]:
    """(kafka-python's unpacked sdist, the python of a venv with it and its test requirements)."""
    tree = _sdist("kafka-python", KAFKA_PYTHON_VERSION)
    venv = CACHE / f"venv-kafka-python-{KAFKA_PYTHON_VERSION}"
    python = venv / "bin" / "python"
    stamp = venv / ".kop-installed"
    if not stamp.exists():
        log("creating kafka-python's test venv")
        _run([sys.executable, "-m", "venv", "--clear", str(venv)])
        _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              f"{tree}[crc32c,lz4,snappy,zstd]", "pytest", "pytest-timeout", "pytest-mock"], timeout=900)
        stamp.touch()
    return tree, python


def confluent_kafka_tree() -> Path:
    return _sdist("confluent-kafka", CONFLUENT_KAFKA_VERSION)


def kafka_tools() -> Path:
    _run([str(ROOT / "scripts" / "kafka-tools.sh"), "fetch"], timeout=1200)
    return ROOT / "scripts" / "kafka-tools.sh"


def fetch_all() -> dict[str, str]:
    """Fetch and build every suite; {suite: error} for those that could not be had."""
    problems: dict[str, str] = {}
    CACHE.mkdir(parents=True, exist_ok=True)
    for suite, step in (("franz-go", franz_go_test_binary), ("librdkafka", librdkafka_tests_dir),
                        ("kafka-python", kafka_python_tree), ("confluent-kafka-python", confluent_kafka_tree),
                        ("kafka-java", kafka_tools)):
        try:
            step()
        except (SourceError, subprocess.TimeoutExpired, OSError) as exc:
            problems[suite] = str(exc)
            log(f"{suite}: {exc}")
    return problems
