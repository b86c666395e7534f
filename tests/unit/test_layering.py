"""The package's layering, checked on the source (ast): the sans-IO parts import no I/O, and Pulsar is
reached only through kop/backend."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KOP = ROOT / "kop"

IO_MODULES = {"asyncio", "socket", "pulsar", "_pulsar"}
PULSAR_MODULES = {"pulsar", "_pulsar", "httpx"}


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; relative imports resolved.

    ``from X import a, b`` yields X and X.a, X.b (a name may be a submodule: ``from . import admin``).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[:-(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def files(pattern: str) -> list[Path]:
    return sorted(KOP.glob(pattern))


PURE_FILES = files("protocol/*.py") + files("mapping/*.py") + [KOP / "backend" / "convert.py",
                                                                 KOP / "backend" / "idempotence.py"]
HANDLER_FILES = files("handlers/*.py")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- the helper itself ---------------------------------------------------------------------------------

def test_imports_of_resolves_relative_imports():
    names = {name for _, name in imports_of(KOP / "protocol" / "framing.py")}
    assert "kop.protocol.errors" in names
    convert = {name for _, name in imports_of(KOP / "backend" / "convert.py")}
    assert "kop.protocol.records" in convert
    assert "kop.protocol.records.Record" in convert


def test_the_checked_files_exist():
    for path in PURE_FILES + HANDLER_FILES:
        assert path.is_file(), path
    assert len(files("protocol/*.py")) >= 4
    assert len(HANDLER_FILES) >= 9


# --- the rules -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PURE_FILES, ids=rel)
def test_pure_modules_import_no_io(path):
    bad = [(line, name) for line, name in imports_of(path) if top(name) in IO_MODULES]
    assert not bad, f"{rel(path)} imports {bad}"


@pytest.mark.parametrize("path", PURE_FILES, ids=rel)
def test_pure_modules_reach_no_io_through_kop(path):
    """Follow kop-internal imports transitively: none of the kop modules reached imports I/O."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for line, name in imports_of(current):
            if top(name) in IO_MODULES:
                pytest.fail(f"{rel(path)} reaches {name} through {rel(current)}:{line}")
            if top(name) == "kop":
                parts = name.split(".")
                for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
                    if candidate.is_file():
                        todo.append(candidate)
                # a package's __init__ runs on import as well
                for i in range(1, len(parts)):
                    init = ROOT.joinpath(*parts[:i], "__init__.py")
                    if init.is_file():
                        todo.append(init)


@pytest.mark.parametrize("path", files("protocol/*.py"), ids=rel)
def test_protocol_imports_nothing_else_from_kop(path):
    bad = [(line, name) for line, name in imports_of(path)
           if top(name) == "kop" and not (name == "kop.protocol" or name.startswith("kop.protocol."))]
    assert not bad, f"{rel(path)} imports {bad}"
    # and in particular nothing of the backend or the server, by relative import either
    for line, name in imports_of(path):
        assert not name.startswith(("kop.backend", "kop.server", "kop.handlers")), (rel(path), line, name)


@pytest.mark.parametrize("path", HANDLER_FILES, ids=rel)
def test_handlers_reach_pulsar_only_through_backend(path):
    bad = [(line, name) for line, name in imports_of(path) if top(name) in PULSAR_MODULES]
    assert not bad, f"{rel(path)} imports {bad}"


def test_no_module_imports_pulsar_client():
    """kop speaks Pulsar's protocol itself (kop/backend/wire): pulsar-client is a test dependency."""
    offenders = [f"{rel(path)}:{line} {name}" for path in sorted(KOP.rglob("*.py"))
                 for line, name in imports_of(path) if top(name) in {"pulsar", "_pulsar"}]
    assert not offenders, offenders


def test_only_backend_speaks_pulsar():
    """The wire client and the admin REST client are used only inside kop/backend."""
    offenders = []
    for path in sorted(KOP.rglob("*.py")):
        if KOP / "backend" in path.parents:
            continue
        for line, name in imports_of(path):
            if top(name) == "httpx" or name.startswith("kop.backend.wire.") and name not in (
                    "kop.backend.wire.errors", "kop.backend.wire.errors.WireError"):
                offenders.append(f"{rel(path)}:{line} {name}")
    assert not offenders, offenders


def test_detector_catches_violations(tmp_path):
    """The checker is not vacuous: it flags every import form it is meant to."""
    pkg = tmp_path / "kop" / "protocol"
    pkg.mkdir(parents=True)
    sample = pkg / "bad.py"
    sample.write_text(
        "import asyncio\n"
        "import socket as s\n"
        "from pulsar import Client\n"
        "import _pulsar\n"
        "from ..backend import pulsar as backend_pulsar\n"
        "from ..server.connection import Connection\n"
        "from . import errors\n")
    names = [name for _, name in imports_of(sample, root=tmp_path)]
    assert {"asyncio", "socket", "pulsar", "_pulsar"} <= {top(n) for n in names}
    assert "kop.backend.pulsar" in names
    assert "kop.server.connection" in names
    assert "kop.protocol.errors" in names


def test_protocol_runs_without_asyncio():
    """Importing every module of kop/protocol, in a fresh interpreter, loads no asyncio (nor anything
    that imports it, such as aiokafka's package)."""
    code = ("import importlib, pkgutil, sys\n"
            "import kop.protocol as package\n"
            "for module in pkgutil.iter_modules(package.__path__):\n"
            "    importlib.import_module(f'kop.protocol.{module.name}')\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in ('asyncio', 'aiokafka')))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"kop/protocol loads {done.stdout.strip()}"
