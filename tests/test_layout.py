"""Tests mirror src/: every module src/wirewatch/<dir>/<name>.py has a test file test_<name>.py
(or test_<name>_<aspect>.py), which belongs in tests/<dir>/, or at least a test that exercises
it by name (the mirror's gaps: `python tests/test_layout.py` lists them). A module no test
names fails here."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "wirewatch"
TESTS = ROOT / "tests"

# Modules that need no test file of their own, and why.
EXEMPT = {
    "__init__.py": "the package version only",
    "__main__.py": "`python -m wirewatch` calls cli.main (every test_cli case runs through it)",
    "capture/__init__.py": "empty package marker",
    "detect/__init__.py": "re-exports detect/registry.py (tests/detect/test_registry.py)",
    "detect/classify/__init__.py": "package docstring only",
    "detect/count/__init__.py": "package docstring only",
    "sinks/__init__.py": "the Sink protocol: checked by mypy, exercised by every sink's tests",
    "store/__init__.py": "package docstring only",
}

# Modules whose tests live in a file named after another module: what that file must mention
# for the module to count as exercised (default: the module's name). Giving a module its own
# tests/<dir>/test_<name>.py makes its line unnecessary.
MENTION = {
    "capture/live.py": "monitor",
    "native/__init__.py": "native",
    "privileges.py": "monitor",
    "schema.py": "expected",
    "sinks/jsonl.py": "--logfile",
    "store/admin.py": "Triage",
    "store/postgres_schema.py": "--db",
    "store/postgres_sink.py": "--db",
    "store/queries.py": "/api/alerts",
    "store/rollups.py": "/sensors",
    "store/sensor_tables.py": "/sensors",
    "tunnel_evidence.py": '"tunnel"',
    "web/__init__.py": "create_app",
    "web/auth.py": "login",
    "web/lookup.py": "/alerts/",
    "web/pages.py": "/alerts",
    "web/params.py": "400",
    "webserver.py": "dashboard",
}


def modules() -> list[str]:
    return sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py"))


def own_tests(module: str) -> list[Path]:
    stem = Path(module).stem
    return sorted(TESTS.rglob(f"test_{stem}.py")) + sorted(TESTS.rglob(f"test_{stem}_*.py"))


def test_every_module_is_tested():
    """Its own test file, or (debt: see without_own_test_file) a test that names it; never neither."""
    texts = [p.read_text() for p in TESTS.rglob("*.py") if p.name != Path(__file__).name]
    untested = [m for m in modules() if m not in EXEMPT and not own_tests(m)
                and not any(MENTION.get(m, Path(m).stem) in t for t in texts)]
    assert untested == [], f"no test file for {untested}: add tests/<dir>/test_<name>.py"


def test_exemptions_name_real_modules():
    assert [m for m in EXEMPT if not (SRC / m).exists()] == []


def without_own_test_file() -> list[str]:
    """The mirror's gaps (modules only exercised through other modules' tests), for the
    record: `python tests/test_layout.py` prints them."""
    return [m for m in modules() if m not in EXEMPT and not own_tests(m)]


if __name__ == "__main__":
    print("\n".join(without_own_test_file()))
