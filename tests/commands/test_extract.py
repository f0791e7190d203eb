"""`wirewatch extract ALERT_ID -o OUT.pcap` (commands/extract.py): a failed-handshake alert of a
corpus capture comes back as exactly its packets, attempts and the RSTs answering them
(tshark compares with the original file); bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import pty
import shutil
import struct
import subprocess
import sys

from conftest import CORPUS, cli, read_alerts
from pcap_oracle import alert_frames, frames, same_packets, tshark

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


def test_a_replaced_capture_is_refused(tmp_path):
    """Review finding: another capture copied to the alert's path gave its packets, exit 0. The
    alert records the file's size and mtime_ns; a file that differs is one line, exit 2."""
    capture = tmp_path / "cap.pcap"
    shutil.copy(CORPUS / "dev01_nmap_syn_top100.pcap", capture)
    db, log = str(tmp_path / "ww.db"), tmp_path / "a.json"
    assert cli("read", str(capture), "--db", db, "--logfile", str(log), "--quiet").returncode == 0
    packets = read_alerts(log)[0]["packets"]
    st = capture.stat()
    assert (packets["size"], packets["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    out = tmp_path / "x.pcap"
    assert cli("extract", "1", "--db", db, "-o", str(out)).returncode == 0
    shutil.copy(CORPUS / "dev04_nmap_xmas.pcap", capture)  # another scan, at the same path
    line = _one_line(cli("extract", "1", "--db", db, "-o", str(out)))
    assert str(capture) in line and "not the capture file the alert was read from" in line
    shutil.copy(CORPUS / "dev01_nmap_syn_top100.pcap", capture)  # same bytes, rewritten: changed since
    assert "replaced or changed" in _one_line(cli("extract", "1", "--db", db, "-o", str(out)))
    os.utime(capture, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cli("extract", "1", "--db", db, "-o", str(out)).returncode == 0


def test_process_substitution_is_named_as_not_a_file(tmp_path):
    """`read <(...)` recorded /dev/fd/63 and extract then said the capture was "no longer there"."""
    db = str(tmp_path / "ww.db")
    env = {**os.environ, "WIREWATCH_OUTPUT__DB": ""}
    r = subprocess.run(["bash", "-c", f'"{sys.executable}" -m wirewatch read <(cat "{RST}") --db "{db}" '
                        "--logfile '' --quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    line = _one_line(cli("extract", "1", "--db", db, "-o", str(tmp_path / "x.pcap")))
    assert "/dev/fd/" in line and "not a file" in line and "cannot be read again" in line
    assert not (tmp_path / "x.pcap").exists()


def test_output_dash_is_standard_output(tmp_path):
    """`-o -` wrote a file named "-"; now the pcap goes to stdout (| tcpdump -r -), never onto a terminal."""
    db = str(tmp_path / "ww.db")
    assert cli("read", str(RST), "--db", db, "--logfile", "", "--quiet").returncode == 0
    out = tmp_path / "x.pcap"
    assert cli("extract", "1", "--db", db, "-o", str(out)).returncode == 0
    env = {**os.environ, "WIREWATCH_OUTPUT__DB": ""}
    r = subprocess.run([sys.executable, "-m", "wirewatch", "extract", "1", "--db", db, "-o", "-"],
                       capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert r.stdout == out.read_bytes() and not (tmp_path / "-").exists()
    piped = subprocess.run(f'"{sys.executable}" -m wirewatch extract 1 --db "{db}" -o - | tcpdump -nr - 2>/dev/null',
                           shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert len(piped.stdout.splitlines()) == len(frames(str(out))) > 0
    main, sub = pty.openpty()
    try:
        tty = subprocess.run([sys.executable, "-m", "wirewatch", "extract", "1", "--db", db, "-o", "-"],
                             stdout=sub, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(sub)
        os.close(main)
    assert tty.returncode == 2 and "terminal" in tty.stderr and len(tty.stderr.strip().splitlines()) == 1


def test_truncated_frames_keep_their_original_length(tmp_path):
    """Written pcaps gave every frame orig_len = caplen: a frame the capture cut (snaplen 60)
    looked whole. Its captured length is what was kept, its original length the wire's
    (tshark's frame.len of the uncut file)."""
    cut = tmp_path / "cut.pcap"
    subprocess.run(["editcap", "-s", "60", str(RST), str(cut)], check=True, timeout=60)
    db, log = str(tmp_path / "ww.db"), tmp_path / "a.json"
    assert cli("read", str(cut), "--db", db, "--logfile", str(log), "--quiet").returncode == 0
    alert = read_alerts(log)[0]
    out = tmp_path / "x.pcap"
    assert cli("extract", "1", "--db", db, "-o", str(out)).returncode == 0
    lens = subprocess.run([tshark(), "-r", str(RST), "-T", "fields", "-e", "frame.len"], capture_output=True,
                          text=True, check=True, timeout=60).stdout.split()
    want = [(min(int(lens[f - 1]), 60), int(lens[f - 1])) for f in alert["packets"]["frames"]]
    assert any(cap < orig for cap, orig in want), "some of the alert's frames were cut to 60 bytes"
    assert _records(out.read_bytes()) == want


def _records(data: bytes) -> list[tuple[int, int]]:
    """(captured length, original length) of each record of a classic little-endian pcap."""
    out, pos = [], 24
    while pos < len(data):
        _, _, cap, orig = struct.unpack_from("<IIII", data, pos)
        out.append((cap, orig))
        pos += 16 + cap
    return out


def test_output_dash_into_a_closed_pipe_or_closed_stdout_is_one_line(tmp_path):
    """`extract 1 -o - | head -c 10` (the reader gone before the pcap was whole) exited 0 as if
    the pcap had been written; with standard output closed (`>&-`) it was a traceback. Each is
    one line naming standard output, exit 2, and no 'Exception ignored' at exit."""
    db = str(tmp_path / "ww.db")
    assert cli("read", str(RST), "--db", db, "--logfile", "", "--quiet").returncode == 0
    env = {**os.environ, "WIREWATCH_OUTPUT__DB": ""}
    argv = [sys.executable, "-m", "wirewatch", "extract", "1", "--db", db, "-o", "-"]
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first byte
    try:
        broken = subprocess.run(argv, stdout=w, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(w)
    assert broken.returncode == 2, broken.stderr
    lines = broken.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirewatch: standard output:"), broken.stderr
    assert "closed" in lines[0] and "bytes" in lines[0]
    closed = subprocess.run(argv, stdout=None, stderr=subprocess.PIPE, text=True, env=env, timeout=120,
                            preexec_fn=lambda: os.close(1))
    assert closed.returncode == 2, closed.stderr
    lines = closed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirewatch: standard output:") and "closed" in lines[0], \
        closed.stderr
