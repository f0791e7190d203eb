"""`wirewatch read` (commands/read.py): damaged, missing and unreadable files are named and the
others still analysed; pcapng and standard input; the console lines and the text summary."""

from __future__ import annotations

import json
import shutil

from conftest import CORPUS, cli, read_alerts

from wirewatch.commands.read import render_summary

SCAN = str(CORPUS / "dev01_nmap_syn_top100.pcap")


def test_missing_garbage_and_directory_inputs_are_named_and_others_still_analysed(tmp_path):
    garbage = tmp_path / "notes.pcap"
    garbage.write_text("this is not a capture\n")
    log = tmp_path / "a.json"
    r = cli("read", str(tmp_path / "missing.pcap"), str(garbage), str(tmp_path), SCAN, "--logfile", str(log),
            "--format", "json")
    assert r.returncode == 2
    errors = [l for l in r.stderr.splitlines() if l.startswith("wirewatch:")]
    assert errors == [f"wirewatch: {tmp_path / 'missing.pcap'}: no such file",
                      f"wirewatch: {garbage}: not a pcap/pcapng capture (unknown file format)",
                      f"wirewatch: {tmp_path}: is a directory, not a capture file"]
    summary = json.loads(r.stdout)
    assert summary["packets"] == 209 and summary["alerts"]["port_scan"] == 1
    assert [f["ok"] for f in summary["files"]] == [False, False, False, True]


def test_truncated_capture_keeps_every_packet_before_the_damage(tmp_path):
    data = (CORPUS / "dev20_benign_http_200.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2])
    r = cli("read", str(cut), "--logfile", str(tmp_path / "a.json"), "--format", "json")
    assert r.returncode == 2
    assert "damaged capture" in r.stderr and str(cut) in r.stderr
    # count the complete records in the first half with a plain reader
    import struct
    off, n = 24, 0
    half = data[: len(data) // 2]
    while off + 16 <= len(half):
        incl = struct.unpack_from("<I", half, off + 8)[0]
        if off + 16 + incl > len(half):
            break
        off += 16 + incl
        n += 1
    assert json.loads(r.stdout)["packets"] == n


def test_unreadable_file_permission(tmp_path):
    p = tmp_path / "secret.pcap"
    shutil.copy(SCAN, p)
    p.chmod(0)
    r = cli("read", str(p), "--logfile", str(tmp_path / "a.json"), env={"HOME": str(tmp_path)})
    import os
    if os.geteuid() == 0:  # root reads anything: the file must then be analysed
        assert r.returncode == 0
    else:
        assert r.returncode == 2 and "permission denied" in r.stderr


def test_pcapng_is_read(tmp_path):
    from scapy.utils import PcapNgWriter, rdpcap
    pkts = rdpcap(SCAN)
    out = tmp_path / "scan.pcapng"
    with PcapNgWriter(str(out)) as w:
        for p in pkts:
            w.write(p)
    log = tmp_path / "a.json"
    r = cli("read", str(out), "--logfile", str(log), "--quiet")
    assert r.returncode == 0
    assert "port_scan" in {a["type"] for a in read_alerts(log)}


def test_console_lines_and_text_summary(tmp_path):
    r = cli("read", SCAN, "--logfile", str(tmp_path / "a.json"))
    assert "[ALERT] Possible port scan detected from 10.10.0.66" in r.stdout.splitlines()
    assert "packets 209" in r.stderr and "port_scan 1" in r.stderr and "top sources: 10.10.0.66" in r.stderr




def test_reads_a_capture_from_standard_input(tmp_path):
    """`tcpdump -w - | wirewatch read -`: the same alerts as from the file."""
    import subprocess
    import sys

    def read(args: list[str], stdin: bytes | None = None) -> tuple[int, str, list[dict]]:
        log = tmp_path / "a.json"
        log.unlink(missing_ok=True)
        r = subprocess.run([sys.executable, "-m", "wirewatch", "read", *args, "--quiet", "--logfile", str(log),
                            "--db", ""], input=stdin, capture_output=True, timeout=120)
        return r.returncode, r.stderr.decode(), read_alerts(log)

    code, _, from_file = read([SCAN])
    assert code == 0 and from_file
    code, _, from_stdin = read(["-"], (CORPUS / "dev01_nmap_syn_top100.pcap").read_bytes())
    assert code == 0 and [a["packets"]["frames"] for a in from_stdin] == [a["packets"]["frames"] for a in from_file]
    assert {a.pop("packets")["file"] for a in from_stdin} == {"-"}  # the same frames, of standard input
    assert from_stdin == [{k: v for k, v in a.items() if k != "packets"} for a in from_file]
    code, err, _ = read(["-"], b"this is not a capture\n")
    assert code == 2 and err.strip().endswith("standard input: not a pcap/pcapng capture (unknown file format)")


def test_the_summary_names_the_store_and_every_failed_file():
    summary = {"files": [{"file": "a.pcap", "ok": True}, {"file": "b.pcap", "ok": False, "error": "b.pcap: truncated"}],
               "packets": 1200, "bytes": 96_000, "capture_duration_s": 2.5, "wall_s": 0.25, "packets_per_s": 4800,
               "decode_errors": {"truncated_ip": 2}, "non_ip_frames": 3, "alerts": {"port_scan": 1},
               "suppressed": {}, "top_sources": [{"src_ip": "10.0.0.9", "packets": 1100}],
               "detector_state": {"port_scan_evicted": 4, "host_sweep_evicted": 0},
               "store": {"stored": 1, "spooled": 2, "replayed": 1, "spool_pending": 1}}
    text = render_summary(summary)
    assert "packets 1,200  bytes 96,000  capture 2.500 s  analysed in 0.250 s (4,800 packets/s)" in text
    assert "decode errors: truncated_ip 2; non-IP frames: 3" in text
    assert "state evictions: port_scan_evicted 4" in text and "host_sweep_evicted" not in text
    assert "store: 1 alerts stored; spooled 2, replayed 1, 1 still spooled (stored at the next start)" in text
    assert text.splitlines()[-1] == "FAILED: b.pcap: truncated"


def test_the_final_stats_event_comes_last_and_counts_the_run_end_updates(tmp_path):
    """The mixed capture ends inside cooldowns: its run-end updates are alerts of the run, so the
    log ends with the stats event and that event counts them (it was written before them)."""
    from pathlib import Path

    log = tmp_path / "a.json"
    capture = Path(__file__).resolve().parent.parent / "mixed" / "mixed-small.pcap.xz"
    r = cli("read", str(capture), "--logfile", str(log), "--db", "", "--quiet", "--no-progress")
    assert r.returncode == 0, r.stderr
    records = [json.loads(x) for x in log.read_text().splitlines()]
    *alerts, stats = records
    assert stats["event_type"] == "stats" and all(a["event_type"] == "alert" for a in alerts)
    updates = [a for a in alerts if "update_of" in a]
    assert updates, "the capture is chosen to end with updates"
    assert stats["stats"]["detect"]["alert"] == len(alerts)
    assert sum(stats["stats"]["alert_manager"]["updated"].values()) == len(updates)



def test_read_loads_neither_the_dashboard_nor_the_store_nor_numpy_ma_and_one_blas_thread(tmp_path):
    """Start-up (README "Start-up"): `read` without a store imports only what it needs (no
    Flask, waitress, Scapy, SQLite, psycopg, libpcap, dashboard or store modules, syslog or webhook
    sink, live sensor, gzip or zstandard decompressor, no numpy.ma, no TOML parser without a config
    file), and numpy's
    OpenBLAS is told to start one thread, not one per core."""
    import os
    import subprocess
    import sys

    probe = ("import os, runpy, sys\n"
             "sys.argv = ['wirewatch', 'read', sys.argv[1], '--quiet', '--logfile', '', '--db', '']\n"
             "code = None\n"
             "try:\n    runpy.run_module('wirewatch', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'waitress', 'scapy', 'sqlite3',"
             " 'pcapy', 'gzip', 'zstandard', 'psycopg', 'tomllib', 'secrets') or m == 'numpy.ma'"
             " or m.startswith(('wirewatch.web', 'wirewatch.store',"
             " 'numpy.ma.', 'wirewatch.sinks.syslog', 'wirewatch.sinks.webhook', 'wirewatch.capture.live',"
             " 'wirewatch.sensor')))\n"
             "print(code, os.environ['OPENBLAS_NUM_THREADS'], 'numpy' in sys.modules, heavy)\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    r = subprocess.run([sys.executable, "-c", probe, SCAN], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.stdout.splitlines()[-1] == "0 1 True []", r.stdout + r.stderr


def test_read_with_its_default_store_loads_the_sqlite_store_and_no_other_command_s_modules(tmp_path):
    """Start-up (README "Start-up"): `read` as most run it, with the SQLite store and the log,
    stores the scan's alerts and loads neither PostgreSQL (psycopg, its sink), the dashboard
    (Flask, waitress, wirewatch.web), Scapy, the live sensor, tune, the feeds' HTTP client,
    the TOML parser nor secrets (hmac and OpenSSL); and its command line builds only `read`'s
    parser."""
    import os
    import sqlite3
    import subprocess
    import sys

    probe = ("import argparse, runpy, sys\n"
             "sys.argv = ['wirewatch', 'read', sys.argv[1], '--quiet', '--db', 'w.db', '--logfile', 'a.json']\n"
             "built = []\n"
             "add = argparse._SubParsersAction.add_parser\n"
             "def counted(self, name, **kw):\n    built.append(name)\n    return add(self, name, **kw)\n"
             "argparse._SubParsersAction.add_parser = counted\n"
             "code = None\n"
             "try:\n    runpy.run_module('wirewatch', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'waitress', 'scapy', 'psycopg',"
             " 'pcapy', 'tomllib', 'secrets', 'urllib3', 'requests') or m.startswith(('wirewatch.web',"
             " 'wirewatch.store.postgres_sink', 'wirewatch.sensor', 'wirewatch.capture.live', 'wirewatch.tune',"
             " 'wirewatch.feeds')))\n"
             "print(code, built, 'wirewatch.store.sqlite_sink' in sys.modules, heavy)\n")
    r = subprocess.run([sys.executable, "-c", probe, SCAN], capture_output=True, text=True, env=dict(os.environ),
                       cwd=tmp_path)
    assert r.stdout.splitlines()[-1] == "0 ['read'] True []", r.stdout + r.stderr
    with sqlite3.connect(tmp_path / "w.db") as db:
        stored = {t for (t,) in db.execute("SELECT DISTINCT type FROM alerts")}
    logged = {a["alert"]["signature"] for a in read_alerts(tmp_path / "a.json")}
    assert "port_scan" in stored and logged
