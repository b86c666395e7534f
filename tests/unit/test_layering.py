"""The package's layering, checked on the source (ast): the sans-IO parts import no I/O, Pulsar is
reached only through kop/backend, and handlers reach the backend and the groups only through their
public interfaces. No exemptions."""

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
                                                                 KOP / "backend" / "idempotence.py",
                                                                 KOP / "server" / "exchange.py"]
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


# What handlers may import of kop (issue 16): the protocol, the pure mapping, each other, the metrics and
# the config; of the backend only its public interface, kop/backend/api.py; of the groups only the names
# below, the groups' interface as handlers see it: the coordinator and what its methods take and raise,
# the group ids' scoping and the ownership of coordinators. Nothing of kop/server, kop/groups' insides
# or the backend's modules.
HANDLER_PACKAGES = ("kop.protocol", "kop.mapping", "kop.handlers")
HANDLER_MODULES = {"kop.metrics", "kop.config", "kop.backend.api"}
GROUPS_PUBLIC = {"kop.groups.scope", "kop.groups.coordinator.GroupCoordinator", "kop.groups.ownership.Ownership",
                 "kop.groups.store.CommittedOffset", "kop.groups.store.NotOwner",
                 # kop/txn, as handlers see it: the transaction coordinator and the view of transactions
                 "kop.txn.coordinator.TransactionCoordinator", "kop.txn.view.TransactionView"}


def kop_imports(path: Path, root: Path = ROOT) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every import of kop in the file: ``from X import a`` gives (X, a),
    ``import X`` gives (X, None); relative imports resolved."""
    out: list[tuple[int, str, str | None]] = []
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, None) for alias in node.names if top(alias.name) == "kop"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if top(module) == "kop":
                out += [(node.lineno, module, alias.name) for alias in node.names]
    return out


def handler_import_allowed(module: str, name: str | None) -> bool:
    full = module if name is None else f"{module}.{name}"
    if module.startswith(tuple(f"{p}." for p in HANDLER_PACKAGES)) or module in HANDLER_PACKAGES:
        return True
    if module in HANDLER_MODULES or full in HANDLER_MODULES:
        return True
    return full in GROUPS_PUBLIC


@pytest.mark.parametrize("path", HANDLER_FILES, ids=rel)
def test_handlers_import_only_public_interfaces(path):
    """type-checking imports included: a type is a dependency too."""
    bad = [(line, module if name is None else f"{module}.{name}") for line, module, name in kop_imports(path)
           if not handler_import_allowed(module, name)]
    assert not bad, f"{rel(path)} imports {bad}"


def test_the_handler_rule_catches_internals(tmp_path):
    sample = tmp_path / "kop" / "handlers" / "bad.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("from ..backend.partition_log import Batch\n"
                      "from ..backend import log_start\n"
                      "from ..groups.state import Group\n"
                      "from ..groups.store import NotOwner, OffsetsStore\n"
                      "from ..server.sasl_session import SaslSession\n"
                      "import kop.backend.reader\n"
                      "from ..backend.api import Batch\n"
                      "from ..groups import scope\n"
                      "from ..protocol.errors import ErrorCode\n"
                      "from .registry import handler\n")
    verdicts = [(f"{m}.{n}" if n else m, handler_import_allowed(m, n)) for _, m, n in kop_imports(sample, tmp_path)]
    assert verdicts == [("kop.backend.partition_log.Batch", False), ("kop.backend.log_start", False),
                        ("kop.groups.state.Group", False), ("kop.groups.store.NotOwner", True),
                        ("kop.groups.store.OffsetsStore", False), ("kop.server.sasl_session.SaslSession", False),
                        ("kop.backend.reader", False), ("kop.backend.api.Batch", True), ("kop.groups.scope", True),
                        ("kop.protocol.errors.ErrorCode", True), ("kop.handlers.registry.handler", True)]


def test_the_backend_interface_is_a_module_of_names():
    """kop/backend/api.py only re-exports: every name it offers is listed in its __all__ and defined
    elsewhere in kop/backend."""
    tree = ast.parse((KOP / "backend" / "api.py").read_text())
    for node in tree.body:
        assert isinstance(node, (ast.ImportFrom, ast.Assign, ast.Expr)), ast.dump(node)
    import kop.backend.api as api
    exported = {name for name in vars(api) if not name.startswith("_") and name != "annotations"}
    assert exported == set(api.__all__)


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
