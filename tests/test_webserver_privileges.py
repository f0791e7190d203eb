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


def test_download_of_a_compressed_captures_alert_after_dropping_root():
    """The dashboard runs as nobody, who cannot read this machine's Python (/root/.pyenv): a
    module imported after the drop fails. An alert of a .pcap.gz/.xz/.bz2/.zst capture answered
    500 on download (the decompressor's module was imported lazily); the warm-up loads them as root."""
    import bz2
    import gzip
    import lzma

    import zstandard
    from conftest import CORPUS
    from dashboard_fixtures import TOKEN as WEB_TOKEN
    from pcap_oracle import alert_frames, frames, same_packets
    from ports import hand_to_nobody, nobody_store, start_dashboard

    scan = CORPUS / "dev01_nmap_syn_top100.pcap"
    packers = {"gz": gzip.compress, "xz": lzma.compress, "bz2": bz2.compress,
               "zst": zstandard.ZstdCompressor().compress}
    env = {**os.environ, "WIREWATCH_OUTPUT__DB": ""}
    with nobody_store("wwgz") as (work, db):
        for ext, pack in packers.items():
            capture = work / f"scan.pcap.{ext}"
            capture.write_bytes(pack(scan.read_bytes()))
            os.chmod(capture, 0o644)
            r = subprocess.run([sys.executable, "-m", "wirewatch", "read", str(capture), "--db", str(db),
                                "--logfile", "", "--quiet"], capture_output=True, text=True, env=env, timeout=120)
            assert r.returncode == 0, r.stderr
        hand_to_nobody(db)
        conn = sqlite3.connect(db)
        first = {json.loads(rec)["packets"]["file"]: (i, json.loads(rec)) for i, rec in
                 reversed(conn.execute("SELECT id, record FROM alerts WHERE type = 'port_scan' ORDER BY id").fetchall())}
        conn.close()
        assert sorted(first) == sorted(str(work / f"scan.pcap.{ext}") for ext in packers)
        with start_dashboard(env, "--db", str(db), "--set", f"web.token={WEB_TOKEN}") as (base, proc):
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
            opener.open(f"{base}/login?token={WEB_TOKEN}", timeout=10).close()  # the session cookie
            users = subprocess.run(["ps", "-o", "user=", "-p", str(proc.pid)], capture_output=True, text=True,
                                   check=True).stdout
            assert users.strip() == "nobody"
            for name, (i, record) in sorted(first.items()):
                try:
                    with opener.open(f"{base}/alerts/{i}/pcap", timeout=30) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                assert status == 200, (name, status, body[:200])
                out = work / f"alert{i}.pcap"
                out.write_bytes(body)
                same_packets(frames(str(out)), alert_frames(frames(str(scan)), record)[:100])
