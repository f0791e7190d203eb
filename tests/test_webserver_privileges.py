"""`wirewatch dashboard` started as root hands over the store's own files only (issue 9, defect 4)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ports import free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starting the dashboard as root needs root")
TOKEN = "privileges-token"


@pytest.fixture
def root_dir():
    d = Path(tempfile.mkdtemp(prefix="wwpriv", dir="/tmp"))
    os.chmod(d, 0o755)  # root's, like /var/lib
    yield d
    shutil.rmtree(d, ignore_errors=True)


def call(port: int, path: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def serve(db: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "dashboard", "--db", str(db), "--port", str(port),
                             "--set", f"web.token={TOKEN}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while True:
        try:
            if call(port, "/api/alerts")[0] == 200:
                return proc, port
        except OSError:
            pass
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)


def test_dashboard_as_root_never_takes_over_a_directory_it_did_not_create(root_dir):
    db = root_dir / "x.db"
    nobody = pwd.getpwnam("nobody").pw_uid
    proc, port = serve(db)
    try:
        assert root_dir.stat().st_uid == 0  # was handed to nobody: --db /var/lib/x.db gave away /var/lib
        assert db.stat().st_uid == nobody
        assert all(Path(f"{db}{ext}").stat().st_uid == nobody for ext in ("-wal", "-shm"))
        # unprivileged now, and still working: a read and a triage write
        conn = sqlite3.connect(db)
        conn.execute("INSERT INTO mutes (type, cidr, until, created) VALUES ('port_scan', '10.0.0.0/8', 1, 1)")
        conn.commit()
        conn.close()
        status, body = call(port, "/api/mutes/1/end", {})
        assert status == 200 and body == {"updated": 1}
        users = subprocess.run(["ps", "-o", "user=", "-p", str(proc.pid)], capture_output=True, text=True, check=True).stdout
        assert users.strip() == "nobody"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_directories_the_dashboard_creates_are_its_users(root_dir):
    db = root_dir / "new" / "deeper" / "x.db"
    nobody = pwd.getpwnam("nobody").pw_uid
    proc, _ = serve(db)
    try:
        assert (root_dir / "new").stat().st_uid == nobody and db.parent.stat().st_uid == nobody
        assert root_dir.stat().st_uid == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
