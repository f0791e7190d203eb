"""Tests mirror src/: every module src/wirewatch/<dir>/<name>.py has a test file test_<name>.py
(or test_<name>_<aspect>.py), which belongs in tests/<dir>/, or at least a test that imports it
(`wirewatch.<dir>.<name>`, or `from wirewatch.<dir> import <name>`), or, for a module reached only
through the dashboard's routes, names one of its routes (MENTION). The mirror's gaps:
`python tests/test_layout.py` lists them. A module no test imports or reaches fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "wirewatch"
TESTS = ROOT / "tests"

# Modules that need no test file of their own, and why.
EXEMPT = {
    "__init__.py": "the package version only",
    "__main__.py": "`python -m wirewatch` calls cli.main (every test_cli case runs through it)",
    "capture/__init__.py": "empty package marker",
    "commands/__init__.py": "package docstring only",
    "detect/__init__.py": "re-exports detect/registry.py (tests/detect/test_registry.py)",
    "detect/classify/__init__.py": "package docstring only",
    "detect/count/__init__.py": "package docstring only",
    "sinks/__init__.py": "the Sink protocol: checked by mypy, exercised by every sink's tests",
    "store/__init__.py": "package docstring only",
}

# Modules reached only through the dashboard's HTTP routes or a PostgreSQL store, never imported
# by a test: the route or URL a test must use for the module to count as exercised (debt: give
# each its own tests/<dir>/test_<name>.py, which makes its line unnecessary).
MENTION = {
    "store/pool.py": "postgresql://",  # the dashboard's connections to a PostgreSQL store
    "store/postgres_schema.py": "postgresql://",
    "store/rollups.py": "postgresql://",  # the PostgreSQL writer's roll-ups (SQLite's are triggers)
    "store/sensor_tables.py": '"/sensors"',
    "web/auth.py": '"/login"',
    "web/lookup.py": '"/alerts/',
    "web/pages.py": '"/alerts',
}


def imports(module: str) -> re.Pattern[str]:
    """`wirewatch.a.b` anywhere (import, from-import, monkeypatch target), or `from wirewatch.a import b`."""
    dotted = "wirewatch." + module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    pkg, _, stem = dotted.rpartition(".")
    return re.compile(rf"{re.escape(dotted)}\b|from {re.escape(pkg)} import [^\n]*\b{stem}\b")


def exercised(module: str, texts: list[str]) -> bool:
    mention = MENTION.get(module)
    pattern = imports(module)
    return any(pattern.search(t) or (mention and mention in t) for t in texts)


def modules() -> list[str]:
    return sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py"))


def own_tests(module: str) -> list[Path]:
    stem = Path(module).stem
    return sorted(TESTS.rglob(f"test_{stem}.py")) + sorted(TESTS.rglob(f"test_{stem}_*.py"))


def test_every_module_is_tested():
    """Its own test file, or (debt: see without_own_test_file) a test that names it; never neither."""
    texts = [p.read_text() for p in TESTS.rglob("*.py") if p.name != Path(__file__).name]
    untested = [m for m in modules() if m not in EXEMPT and not own_tests(m) and not exercised(m, texts)]
    assert untested == [], f"no test file for {untested}: add tests/<dir>/test_<name>.py"


def test_exemptions_name_real_modules():
    assert [m for m in EXEMPT if not (SRC / m).exists()] == []
    assert [m for m in MENTION if not (SRC / m).exists() or own_tests(m)] == []  # no stale lines


def test_the_import_pattern_matches_imports_only():
    p = imports("store/pool.py")
    assert p.search("from wirewatch.store.pool import Pool") and p.search("from wirewatch.store import admin, pool")
    assert not p.search("thread pool") and not p.search("from wirewatch.store.poolside import x")


def without_own_test_file() -> list[str]:
    """The mirror's gaps (modules only exercised through other modules' tests), for the
    record: `python tests/test_layout.py` prints them."""
    return [m for m in modules() if m not in EXEMPT and not own_tests(m)]


if __name__ == "__main__":
    print("\n".join(without_own_test_file()))
