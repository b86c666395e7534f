#!/usr/bin/env python3
"""The README's configuration reference, generated from config/kop.example.toml (its keys, defaults
and comments), so the two cannot drift apart: tests/unit/test_config_reference.py compares them.

    scripts/config_reference.py           print the table
    scripts/config_reference.py --write   replace the table between the markers in README.md
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "kop.example.toml"
README = ROOT / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def _value(raw) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return f'"{raw}"'
    if isinstance(raw, int) and abs(raw) >= 10_000:
        return f"{raw:_}".replace("_", ",")
    return str(raw)


def table(example: Path = EXAMPLE) -> str:
    data = tomllib.loads(example.read_text())
    rows = ["| key | environment variable | default | what it is |", "|---|---|---|---|"]
    section = ""
    comment: list[str] = []  # the comment block above a run of keys applies to each of them
    after_key = False
    for line in example.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            comment, after_key = [], False
            continue
        if stripped.startswith("#"):
            if after_key:
                comment, after_key = [], False
            comment.append(stripped.lstrip("#").strip())
            continue
        after_key = True
        header = re.fullmatch(r"\[(\w+)\]", stripped)
        if header:
            section, comment = header.group(1), []
            continue
        key = stripped.split("=", 1)[0].strip()
        value = (data[section] if section else data)[key]
        dotted = f"{section}.{key}" if section else key
        env = "KOP_" + dotted.replace(".", "_").upper()
        text = " ".join(comment).replace("|", "\\|")
        rows.append(f"| `{dotted}` | `{env}` | `{_value(value)}` | {text} |")
    return "\n".join(rows) + "\n"


def readme_with(text: str, readme: str) -> str:
    head, start, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return f"{head}{START}\n{text}{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        README.write_text(readme_with(table(), README.read_text()))
    else:
        sys.stdout.write(table())
