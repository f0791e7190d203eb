"""The code stays clean for the next reader: ruff over src, tests and bench, mypy over src (which
checks every detector against detect.base.Detector and every sink against sinks.Sink). .ci/run
runs both before `make test` too; here they fail the suite a helper runs before landing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=240)


def test_ruff_finds_nothing():
    r = run("ruff", "check", "src", "tests", "bench")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_finds_nothing_in_src():
    r = run("mypy")  # files and settings: [tool.mypy] in pyproject.toml
    assert r.returncode == 0, r.stdout + r.stderr
