"""README's configuration reference is the one scripts/config_reference.py generates from
config/kop.example.toml (which test_config.py holds to every key and default)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "scripts" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_reference_is_up_to_date():
    gen = _generator()
    readme = (ROOT / "README.md").read_text()
    assert gen.readme_with(gen.table(), readme) == readme, \
        "README.md's configuration reference is stale: run scripts/config_reference.py --write"


def test_every_key_has_a_row_with_an_explanation():
    from kop.config import Config
    import dataclasses
    rows = [line for line in _generator().table().splitlines()[2:]]
    keys = {row.split("`")[1] for row in rows}
    expected = set()
    for f in dataclasses.fields(Config):
        value = getattr(Config(), f.name)
        if dataclasses.is_dataclass(value):
            expected |= {f"{f.name}.{k.name}" for k in dataclasses.fields(value)}
        else:
            expected.add(f.name)
    assert keys == expected
    unexplained = [row.split("`")[1] for row in rows if row.rstrip(" |").endswith("|") or row.endswith("|  |")]
    assert not unexplained, f"keys without a comment in config/kop.example.toml: {unexplained}"
