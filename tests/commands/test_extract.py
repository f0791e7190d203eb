"""`wirewatch extract ALERT_ID -o OUT.pcap` (commands/extract.py): a failed-handshake alert of a
corpus capture comes back as exactly its packets, attempts and the RSTs answering them
(tshark compares with the original file); bad input is one line and exit 2."""

from __future__ import annotations

import json
import shutil

from conftest import CORPUS, cli, read_alerts
from pcap_oracle import alert_frames, frames, same_packets

RST = CORPUS / "dev11_failed_handshake_rst.pcap"


def test_extract_writes_exactly_the_alerts_frames(tmp_path):
    db, log = str(tmp_path / "ww.db"), tmp_path / "a.json"
    r = cli("read", str(RST), "--db", db, "--logfile", str(log), "--quiet", "--alert-frames", "40")
    assert r.returncode == 0, r.stderr
    alerts = read_alerts(log)
    i, alert = next((i, a) for i, a in enumerate(alerts, 1) if a["type"] == "failed_handshake")
    want = alert_frames(frames(str(RST)), alert)
    assert any(w["src"] == alert["dest_ip"] for w in want), "the victim's RSTs belong to the alert"
    assert alert["packets"]["frames"] == [w["frame"] for w in want][:40]
    out = tmp_path / "out.pcap"
    r = cli("extract", str(i), "--db", db, "-o", str(out))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    same_packets(frames(str(out)), want[:40])


def test_alert_frames_zero_records_none(tmp_path):
    log = tmp_path / "a.json"
    r = cli("read", str(RST), "--logfile", str(log), "--quiet", "--set", "output.alert_frames=0")
    assert r.returncode == 0, r.stderr
    assert read_alerts(log) and all("packets" not in a for a in read_alerts(log))


def _one_line(r) -> str:
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    capture = tmp_path / "gone.pcap"
    shutil.copy(RST, capture)
    db = str(tmp_path / "ww.db")
    assert cli("read", str(capture), "--db", db, "--logfile", "", "--quiet").returncode == 0
    out = str(tmp_path / "x.pcap")
    assert "no alert 999" in _one_line(cli("extract", "999", "--db", db, "-o", out))
    assert "ALERT_ID: 'abc'" in _one_line(cli("extract", "abc", "--db", db, "-o", out))
    assert "no such alert store" in _one_line(cli("extract", "1", "--db", str(tmp_path / "none.db"), "-o", out))
    (tmp_path / "bad.db").write_text("x")
    assert "bad.db: not a readable alert store" in _one_line(cli("extract", "1", "--db", str(tmp_path / "bad.db"),
                                                                  "-o", out))
    line = _one_line(cli("extract", "1", "--db", db, "-o", str(tmp_path / "no" / "dir" / "x.pcap")))
    assert "cannot write" in line and "no/dir/x.pcap" in line
    assert cli("extract", "1", "--db", db, "-o", out).returncode == 0
    capture.unlink()
    line = _one_line(cli("extract", "1", "--db", db, "-o", out))
    assert str(capture) in line and "no longer there" in line


def test_extract_from_a_postgresql_store(tmp_path):
    """The PostgreSQL store keeps the packets too (migration 3: the generated packets column)."""
    from pg_server import PgServer

    from wirewatch.store.postgres_schema import connect

    pg = PgServer()
    try:
        url = pg.url()
        env = {"WIREWATCH_STORE__STATE_DIR": str(tmp_path)}
        r = cli("read", str(RST), "--db", url, "--logfile", "", "--quiet", env=env)
        assert r.returncode == 0, r.stderr
        with connect(url) as conn:
            rows = conn.execute("SELECT id, packets FROM alerts WHERE type = 'failed_handshake'").fetchall()
        assert rows and '"frames"' in rows[0][1]
        out = tmp_path / "pg.pcap"
        r = cli("extract", str(rows[0][0]), "--db", url, "-o", str(out), env=env)
        assert r.returncode == 0, r.stderr
        wanted = set(json.loads(rows[0][1])["frames"])
        same_packets(frames(str(out)), [f for f in frames(str(RST)) if f["frame"] in wanted])
    finally:
        pg.close()
