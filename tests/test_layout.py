"""Tests mirror src/: every module src/wirewatch/<dir>/<name>.py has its own test file
tests/<dir>/test_<name>.py (or test_<name>_<aspect>.py); a package's
__init__.py is the module wirewatch.<dir>.<pkg>, so its file is tests/<dir>/test_<pkg>.py
(wirewatch/web/__init__.py: tests/test_web.py). Being reached through another module's
tests does not count. `python tests/test_layout.py` lists the modules without one."""

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
    "commands/__init__.py": "package docstring only",
    "detect/__init__.py": "re-exports detect/registry.py (tests/detect/test_registry.py)",
    "detect/classify/__init__.py": "package docstring only",
    "detect/count/__init__.py": "package docstring only",
    "sinks/__init__.py": "the Sink protocol: checked by mypy, exercised by every sink's tests",
    "store/__init__.py": "package docstring only",
}


def dotted(module: str) -> str:
    """capture/pcapfile.py -> wirewatch.capture.pcapfile; web/__init__.py -> wirewatch.web."""
    return "wirewatch." + module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def modules() -> list[str]:
    return sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py"))


def own_tests(module: str) -> list[Path]:
    """tests/<dir>/test_<stem>.py and test_<stem>_*.py, where <dir>/<stem> is the module's
    dotted name under wirewatch (a package's __init__.py stands for the package)."""
    parts = dotted(module).split(".")[1:]
    folder, stem = TESTS.joinpath(*parts[:-1]), parts[-1]
    return sorted(folder.glob(f"test_{stem}.py")) + sorted(folder.glob(f"test_{stem}_*.py"))


def without_own_test_file() -> list[str]:
    return [m for m in modules() if m not in EXEMPT and not own_tests(m)]


def test_every_module_has_its_own_test_file():
    missing = without_own_test_file()
    assert missing == [], f"no test file of their own for {missing}: add tests/<dir>/test_<name>.py"


def test_exemptions_name_real_modules_without_a_test_file():
    assert [m for m in EXEMPT if not (SRC / m).exists() or own_tests(m)] == []  # no stale lines


def test_the_mirror_rule_on_known_paths():
    assert own_tests("web/__init__.py") == [TESTS / "test_web.py"]
    assert TESTS / "store" / "test_schema.py" in own_tests("store/schema.py")
    assert TESTS / "test_schema.py" not in own_tests("store/schema.py")  # wirewatch/schema.py's
    assert TESTS / "capture" / "test_live_replay.py" in own_tests("capture/live.py")
    assert own_tests("store/pool.py") == [TESTS / "store" / "test_pool.py"]  # not tests/web/test_pool*.py


if __name__ == "__main__":
    print("\n".join(without_own_test_file()))
