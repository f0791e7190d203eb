"""commands/monitor.py: `wirewatch monitor` names an interface that does not exist and exits 2
before it captures anything (the live namespace tests in tests/capture/test_live.py run it for real)."""

from __future__ import annotations

import subprocess
import sys


def test_an_unknown_interface_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "wirewatch", "monitor", "-i", "nosuch7", "--logfile",
                        str(tmp_path / "a.json"), "--db", ""], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("wirewatch: unknown interface 'nosuch7' (interfaces: ") and "lo" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_run_refuses_an_open_bind_before_it_captures(tmp_path):
    r = subprocess.run([sys.executable, "-m", "wirewatch", "run", "-i", "lo", "--host", "0.0.0.0", "--db",
                        str(tmp_path / "w.db"), "--logfile", str(tmp_path / "a.json")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "refusing to serve the dashboard on 0.0.0.0" in r.stderr
    assert not (tmp_path / "a.json").exists()
