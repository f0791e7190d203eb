"""Three sensors into one real PostgreSQL server at once, and the server stopped and
started again mid-run: every alert is stored exactly once, with its sensor."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS
from pg_server import PgServer

# per sensor: three parts of its capture, streamed on stdin (before, during, after the outage)
STREAMS = {
    "edge-a": [["dev01_nmap_syn_top100.pcap"], ["dev04_nmap_xmas.pcap", "dev17_suspicious_ports.pcap"],
               ["dev07_nmap_ping_sweep.pcap"]],
    "edge-b": [["dev02_nmap_connect_1-200.pcap"], ["dev05_nmap_null.pcap", "dev24_distributed_scan.pcap"],
               ["dev16_udp_burst.pcap"]],
    "edge-c": [["dev23_mixed_http_dns_with_synscan.pcap"], ["dev08_nmap_tcp_sweep_22.pcap", "dev03_nmap_udp_small.pcap"],
               ["dev15_icmp_ping_flood.pcap"]],
}
GAP_S = 600  # packet-time gap between concatenated captures: each starts with fresh windows


def pcap_records(path: Path) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """(global header, [(sec, usec, rest of the record)]) of a microsecond pcap."""
    data = path.read_bytes()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4
    out, off = [], 24
    while off < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        out.append((sec, usec, data[off + 8:off + 16 + incl]))
        off += 16 + incl
    return data[:24], out


def stream_parts(parts: list[list[str]]) -> tuple[bytes, list[bytes]]:
    """One pcap made of the listed captures one after another in packet time, cut in parts.

    Each part but the last ends with a copy of its last packet GAP_S / 2 later: `read` analyses
    a time slice once a packet of a later slice arrives (or the input ends), so that copy is
    what makes the part's own alerts come out while the stream waits for the next part."""
    header, out, clock = b"", [], 0
    for k, files in enumerate(parts):
        chunk = []
        for name in files:
            header, recs = pcap_records(CORPUS / name)
            shift = (clock + GAP_S - recs[0][0]) if clock else 0
            for sec, usec, rest in recs:
                chunk.append(struct.pack("<II", sec + shift, usec) + rest)
            clock = recs[-1][0] + shift
        if k < len(parts) - 1:
            chunk.append(struct.pack("<II", clock + GAP_S // 2, 0) + chunk[-1][8:])
        out.append(b"".join(chunk))
    return header, out


def log_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for(cond, timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def pg():
    server = PgServer()
    yield server
    server.close()


def test_three_sensors_and_a_restart_lose_nothing_and_double_nothing(pg, tmp_path):
    import psycopg
    url = pg.url()
    # the stream reader hands over what the pipe holds when it runs dry (libpcap would wait for a full batch)
    env = {**os.environ, "WIREWATCH_OUTPUT__DB": url}
    procs, logs, parts = {}, {}, {}
    for sensor, files in STREAMS.items():
        header, parts[sensor] = stream_parts(files)
        logs[sensor] = tmp_path / f"{sensor}.json"
        procs[sensor] = subprocess.Popen(
            [sys.executable, "-m", "wirewatch", "read", "-", "--sensor", sensor, "--logfile", str(logs[sensor]),
             "--quiet", "--no-progress", "--set", "general.batch_size=32", "--set", f"store.state_dir={tmp_path}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{sensor}.err").open("wb"), env=env)
        procs[sensor].stdin.write(header + parts[sensor][0])
        procs[sensor].stdin.flush()
    for sensor in STREAMS:
        wait_for(lambda s=sensor: log_lines(logs[s]) > 0, what=f"{sensor}'s first alerts")
    before = {s: log_lines(logs[s]) for s in STREAMS}

    pg.stop("fast")  # the database goes away mid-run
    for sensor in STREAMS:
        procs[sensor].stdin.write(parts[sensor][1])
        procs[sensor].stdin.flush()
    for sensor in STREAMS:  # alerts raised while it is down go to the spool
        wait_for(lambda s=sensor: log_lines(logs[s]) > before[s], what=f"{sensor}'s alerts during the outage")
    time.sleep(1.0)
    pg.start()

    for sensor in STREAMS:
        procs[sensor].stdin.write(parts[sensor][2])
        procs[sensor].stdin.close()
    for sensor, p in procs.items():
        p.wait(timeout=120)
        err = (tmp_path / f"{sensor}.err").read_text()
        assert p.returncode == 0, err
        assert "spooling" in err and "replayed" in err, err

    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT sensor, record, uid FROM alerts ORDER BY id").fetchall()
        stats_sensors = sorted(r[0] for r in conn.execute("SELECT sensor FROM stats"))
    assert len({uid for _, _, uid in stored}) == len(stored)  # nothing doubled
    for sensor in STREAMS:
        logged = [r for r in map(json.loads, logs[sensor].read_text().splitlines())
                  if r["event_type"] != "stats"]  # read's log ends with its final stats event
        mine = [json.loads(rec) for s, rec, _ in stored if s == sensor]
        assert len(logged) > before[sensor] > 0
        key = lambda a: (a["timestamp"], a["type"], a["flow_id"])  # noqa: E731
        assert sorted(mine, key=key) == sorted(logged, key=key), sensor  # nothing lost, nothing extra
        assert all(a["host"] == sensor for a in mine)
    assert stats_sensors == sorted(STREAMS)  # each sensor's final stats event, once
