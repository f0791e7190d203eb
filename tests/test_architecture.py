"""docs/ARCHITECTURE.md stays true: it lists every module of src/wirewatch, and every file it
names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "wirewatch"
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def named_files() -> set[str]:
    return set(re.findall(r"`([\w./]+\.py)`", DOC)) | set(re.findall(r"\b((?:tests|bench)/[\w./]+\.py)\b", DOC))


def test_every_module_is_in_the_module_list():
    listed = set(re.findall(r"^\| `([\w./]+\.py)` \|", DOC, re.M))
    modules = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py")}
    assert sorted(modules - listed) == [], "add a row to docs/ARCHITECTURE.md's module list"


def test_every_file_named_exists():
    missing = [f for f in named_files()
               if not ((ROOT / f).exists() if f.startswith(("tests/", "bench/")) else (SRC / f).exists())]
    assert missing == [], "docs/ARCHITECTURE.md names files that do not exist"
