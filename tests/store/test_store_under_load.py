"""`wirewatch read --db` while others use the store: the dashboard's triage writes, and a
write lock held for 10 s. Every alert is stored exactly once (issue 9, "How we will know").

The capture is streamed into `wirewatch read -` over several seconds (its packets padded
so the stream reader hands over batches while it runs), so the store is written all along.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from alert_captures import storm_capture

TOKEN = "store-load-token"


@pytest.fixture
def world():
    """A directory the dashboard can still use after it drops root to nobody."""
    d = Path(tempfile.mkdtemp(prefix="wwstore", dir="/tmp"))
    os.chmod(d, 0o755)
    store = d / "store"
    store.mkdir()
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(store, nobody.pw_uid, nobody.pw_gid)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def count(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not migrated yet
    finally:
        conn.close()


def sources(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT src_ip FROM alerts")]
    finally:
        conn.close()


def stream_read(pcap: str, db: Path, seconds: float) -> subprocess.Popen:
    """`wirewatch read -` fed the capture over about `seconds` seconds from a thread."""
    rfd, wfd = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "read", "-", "--db", str(db), "--logfile", "",
                             "--quiet", "--format", "json", "--no-progress"],
                            stdin=rfd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(rfd)
    data = Path(pcap).read_bytes()
    steps = 40
    size = len(data) // steps + 1

    def feed() -> None:
        try:
            for i in range(0, len(data), size):
                view = memoryview(data)[i:i + size]
                while view:
                    view = view[os.write(wfd, view):]
                time.sleep(seconds / steps)
        finally:
            os.close(wfd)

    threading.Thread(target=feed, daemon=True).start()
    return proc


def finish(proc: subprocess.Popen) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err, err.decode()
    return json.loads(out), err.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port: int, path: str, body: dict | None = None) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            if path.startswith("/api/alerts?"):
                return json.loads(r.read())["alerts"]
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_dashboard_acknowledges_and_mutes_every_200ms_while_read_fills_the_store(world):
    """Defect 1 as reported: triage POSTs during `read --db` left 1,001 of 3,001 alerts stored and exit 1."""
    n = 3000
    pcap = storm_capture(str(world / "storm.pcap"), n, pad=9000)
    db = world / "store" / "ww.db"
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "wirewatch", "dashboard", "--db", str(db), "--port", str(port),
                            "--set", f"web.token={TOKEN}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while not _up(port):
            assert time.time() < deadline and web.poll() is None, web.communicate()
            time.sleep(0.2)
        proc = stream_read(pcap, db, seconds=8)
        statuses: list[int] = []
        while proc.poll() is None:
            rows = api(port, "/api/alerts?limit=50")
            ids = [r["id"] for r in rows] if isinstance(rows, list) else []
            statuses.append(api(port, "/api/alerts/ack", {"ids": ids}))
            statuses.append(api(port, "/api/mutes", {"type": "port_scan", "cidr": "192.0.2.0/24", "hours": 1}))
            time.sleep(0.2)
        summary, _ = finish(proc)
    finally:
        web.terminate()
        web.wait(timeout=10)
    stored = sources(db)
    assert len(stored) == n and len(set(stored)) == n
    assert summary["store"]["stored"] + summary["store"]["replayed"] >= n
    assert len(statuses) >= 20 and statuses.count(200) >= 10 and statuses.count(201) >= 10, statuses


def _up(port: int) -> bool:
    try:
        return isinstance(api(port, "/api/alerts?limit=1"), list)
    except OSError:
        return False


def test_a_write_lock_held_for_10s_mid_run_is_bridged_by_the_spool(world):
    n = 4000
    pcap = storm_capture(str(world / "storm.pcap"), n, pad=9000)
    db = world / "store" / "lock.db"
    proc = stream_read(pcap, db, seconds=20)
    deadline = time.time() + 60
    while count(db) == 0:
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    locker = sqlite3.connect(db, isolation_level=None, timeout=10)
    locker.execute("BEGIN IMMEDIATE")
    held_at = count(db)
    time.sleep(10)
    during = count(db)
    locker.execute("ROLLBACK")
    locker.close()
    summary, err = finish(proc)
    assert during == held_at < n  # nothing got in while the lock was held
    stored = sources(db)
    assert len(stored) == n and len(set(stored)) == n
    st = summary["store"]
    assert st["spooled"] > 0 and st["replayed"] == st["spooled"] and st["spool_pending"] == 0, st
    assert "spooling to" in err and "replayed" in err
