"""Tests mirror src/: every module src/wirewatch/<dir>/<name>.py has a test file test_<name>.py
(or test_<name>_<aspect>.py), which belongs in tests/<dir>/. A new module without one fails here."""

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

# Modules exercised today only through other modules' tests (the file named is where). Debt, not
# design: give each its own test file and delete its line.
NOT_YET = {
    "addr.py": "test_decode.py",
    "capture/live.py": "test_sensor.py",
    "capture/batch.py": "test_sources.py",
    "capture/pcapfile.py": "test_sources.py",
    "craft.py": "test_decode.py",
    "demo.py": "test_readme.py",
    "detect/base.py": "detect/test_registry.py",
    "detect/classify/conversations.py": "detect/test_host_sweep_busy.py",
    "detect/classify/handshakes.py": "detect/test_failed_handshake.py",
    "detect/classify/packets.py": "detect/test_port_scan.py",
    "detect/classify/replies.py": "detect/test_port_scan.py",
    "detect/count/doorkeeper.py": "detect/count/test_window.py",
    "detect/count/report.py": "detect/test_port_scan.py",
    "lut.py": "detect/test_suspicious_port.py",
    "native/__init__.py": "detect/count/test_kernels.py",
    "privileges.py": "test_live.py",
    "progress.py": "test_cli.py",
    "schema.py": "test_expected.py",
    "settings.py": "test_config.py",
    "sinks/console.py": "test_cli.py",
    "sinks/jsonl.py": "test_cli.py",
    "store/admin.py": "test_web.py",
    "store/postgres_schema.py": "store/test_postgres_fleet.py",
    "store/postgres_sink.py": "store/test_postgres_fleet.py",
    "store/rollups.py": "web/test_fleet_dashboard.py",
    "store/sensor_tables.py": "web/test_fleet_dashboard.py",
    "store/queries.py": "test_web.py",
    "store/schema.py": "store/test_sqlite_sink.py",
    "talkers.py": "test_cli.py",
    "timeline.py": "test_web.py",
    "web/__init__.py": "test_web.py",
    "web/auth.py": "test_web.py",
    "web/lookup.py": "test_web.py",
    "web/pages.py": "test_web.py",
    "web/params.py": "web/test_api_validation.py",
    "tunnel_evidence.py": "test_decode_tunnels.py",
    "webserver.py": "web/test_sessions.py",
}

# What some test file must mention for a NOT_YET module to count as exercised (default: its name)
MENTION = {"demo.py": "make sample", "detect/base.py": "DetectorSpec", "lut.py": "suspicious_port",
           "progress.py": "read", "settings.py": "setting", "sinks/console.py": "[ALERT]",
           "sinks/jsonl.py": "--logfile", "talkers.py": "top sources", "schema.py": "expected",
           "privileges.py": "monitor", "detect/classify/handshakes.py": "RA", "web/__init__.py": "create_app",
           "detect/count/report.py": "first_seen", "web/lookup.py": "/alerts/", "tunnel_evidence.py": "\"tunnel\"", "web/params.py": "400", "web/pages.py": "/alerts",
           "web/auth.py": "login", "store/postgres_sink.py": "--db", "store/postgres_schema.py": "--db",
           "store/rollups.py": "/sensors", "store/sensor_tables.py": "/sensors", "store/queries.py": "/api/alerts", "store/admin.py": "Triage",
           "capture/live.py": "monitor", "webserver.py": "dashboard", "addr.py": "addr", "native/__init__.py": "native"}


def modules() -> list[str]:
    return sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py"))


def own_tests(module: str) -> list[Path]:
    stem = Path(module).stem
    return sorted(TESTS.rglob(f"test_{stem}.py")) + sorted(TESTS.rglob(f"test_{stem}_*.py"))


def test_every_module_has_a_test_file():
    missing = [m for m in modules() if not own_tests(m) and m not in EXEMPT and m not in NOT_YET]
    assert missing == [], f"add tests/<dir>/test_<name>.py for {missing}"


def test_modules_without_their_own_file_are_exercised_somewhere():
    texts = [p.read_text() for p in TESTS.rglob("*.py") if p.name != Path(__file__).name]
    for module in NOT_YET:
        if (SRC / module).exists() and not own_tests(module):
            word = MENTION.get(module, Path(module).stem)
            assert any(word in t for t in texts), f"no test mentions {word!r}: {module} is untested"
