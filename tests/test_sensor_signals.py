"""The live sensor's signals with the store attached, in network namespaces this test creates
(issue 9): SIGHUP when the log cannot be reopened; SIGTERM during an alert storm."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SRC, need
from netns import can_create_namespaces

pytestmark = pytest.mark.skipif(not can_create_namespaces(), reason="live tests need root and iproute2")


def start(net, world: Path, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
    """`wirewatch monitor` with a log under logs/ and a store under var/ (both created, and
    handed to nobody, by the sensor itself); returns once the first stats event is stored."""
    log, db = world / "logs" / "alerts.json", world / "var" / "ww.db"
    proc = net.popen(net.sensor, sys.executable, "-m", "wirewatch", "monitor", "-i", net.sensor_if, "--quiet",
                     "--logfile", str(log), "--db", str(db), "--stats-interval", "1", *extra,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(world),
                     env={**os.environ, "PYTHONPATH": SRC})
    deadline = time.time() + 20
    while not (db.exists() and rows(db, "stats")):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    return proc, log, db


def rows(db: Path, table: str = "alerts") -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def test_sighup_with_an_unwritable_log_directory_keeps_the_old_log_and_the_sensor(net, world):
    """Defect 3: the new log could not be created, and the sensor died (exit 2, no drain, no stats)."""
    need("nmap")
    proc, log, db = start(net, world)
    rotated = log.with_name("alerts.json.1")
    log.rename(rotated)  # logrotate moved it away...
    os.chown(log.parent, 0, 0)  # ...and the directory is root's 0755: nobody cannot create a new log
    os.chmod(log.parent, 0o755)
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()
    net.run(net.attacker, "nmap", "-sS", "-Pn", "-n", "-p", "1-200", "--max-retries", "0", net.sensor_ip, timeout=60)
    deadline = time.time() + 10
    while rows(db) == 0:
        assert time.time() < deadline, "the store stopped filling after SIGHUP"
        time.sleep(0.2)
    stats_before = rows(db, "stats")
    time.sleep(2.5)
    assert rows(db, "stats") > stats_before  # still running: stats events keep coming
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    problems = [line for line in err.splitlines() if "cannot reopen alert log" in line]
    assert len(problems) == 1 and str(log) in problems[0] and "old file" in problems[0], err
    assert "log kept" in err
    old = [json.loads(line) for line in rotated.read_text().splitlines()]
    assert any(r.get("type") == "port_scan" for r in old)  # written through the old handle
    assert old[-1]["event_type"] == "stats" and old[-1]["stats"]["final"] is True
    assert not log.exists()

def test_sigterm_during_an_alert_storm_exits_within_5s_with_every_alert_written(net, world):
    """Defect 5: during a spoofed-source SYN storm to a watched port SIGTERM took ~82 s."""
    need("hping3")
    proc, log, db = start(net, world)
    flood = net.popen(net.attacker, "hping3", "--flood", "--rand-source", "-S", "-p", "4444", net.sensor_ip,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4.0)
        assert proc.poll() is None, proc.communicate()
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - t
    finally:
        flood.kill()
        flood.wait()
    assert proc.returncode == 0, err
    assert took < 5.0, f"stopping took {took:.1f} s"
    raised = int(re.search(r"alerts ([\d,]+)", err.splitlines()[-1]).group(1).replace(",", ""))
    assert raised > 0
    assert rows(db) == raised, err  # every alert raised is in the store
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len([r for r in records if r["event_type"] == "alert"]) == raised  # and in the log
    assert [r for r in records if r["event_type"] == "stats"][-1]["stats"]["final"] is True
