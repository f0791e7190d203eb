"""Live capture in network namespaces this test creates: a real nmap scan's alert has a pcap in
var/pcap (output.pcap_dir) written by the unprivileged sensor when it fired, holding the
scan's packets: exactly those tcpdump, listening on the same interface, recorded for the
alert's addresses and window (tshark compares addresses, ports and time stamps, to 50 us:
two sockets stamp packets each on its own); the
dashboard's download serves that file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import SRC, need, read_events
from dashboard_fixtures import TOKEN, login
from netns import can_create_namespaces
from pcap_oracle import alert_frames, frames, same_packets

from wirewatch.web import create_app

pytestmark = pytest.mark.skipif(not can_create_namespaces(), reason="live tests need root and iproute2")


def scan_with_tcpdump_beside(L, world, monitor_args: tuple[str, ...] = (), nmap_args: tuple[str, ...] = ()):
    """tcpdump (full length) and `wirewatch monitor` on the sensor's interface, an nmap SYN scan of
    150 ports from the attacker; returns the log, tcpdump's capture and the port_scan alert,
    once the sensor has exited 0 after SIGTERM."""
    for tool in ("nmap", "tcpdump"):
        need(tool)
    ref = world / "tcpdump.pcap"
    dump = L.popen(L.sensor, "tcpdump", "-i", L.sensor_if, "-U", "-n", "-w", str(ref), "-c", "2000",
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = world / "logs" / "alerts.json"
    proc = L.popen(L.sensor, sys.executable, "-m", "wirewatch", "monitor", "-i", L.sensor_if, "--quiet",
                   *monitor_args, "--logfile", str(log), "--stats-interval", "1", cwd=str(world),
                   env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True)
    deadline = time.time() + 15
    while time.time() < deadline and not read_events(log, "stats"):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    L.run(L.attacker, "nmap", "-sS", "-Pn", "-n", "-p", "1-150", "--max-retries", "0", *nmap_args,
          L.sensor_ip, timeout=60)
    deadline = time.time() + 8
    while time.time() < deadline and not any(a["type"] == "port_scan" for a in read_events(log)):
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    dump.send_signal(signal.SIGINT)
    dump.wait(timeout=10)
    assert proc.returncode == 0 and "failed" not in err, err
    return log, ref, next(a for a in read_events(log) if a["type"] == "port_scan")


def test_nmap_scan_alert_has_its_packets_in_var_pcap(net, world):
    L = net
    log, ref, scan = scan_with_tcpdump_beside(L, world)
    pk = scan["packets"]
    pcap = world / "var" / "pcap" / pk["pcap"]
    assert pcap.exists() and pcap.stat().st_uid != 0  # written after the sensor dropped root
    got = frames(str(pcap))
    assert len(got) == pk["count"] == min(100, pk["matched"]) and pk["count"] >= 100
    assert {(r["src"], r["dst"]) for r in got} <= {(L.attacker_ip, L.sensor_ip), (L.sensor_ip, L.attacker_ip)}
    assert len({r["dport"] for r in got if r["src"] == L.attacker_ip}) >= 20  # the scan's probes
    # two capture sockets stamp a packet each on its own (seen: 1 us apart): tcpdump's
    # times are compared to within 50 us, and its packets within 50 us of the window count
    want = alert_frames(frames(str(ref)), scan, slack=50e-6)
    assert abs(len(want) - pk["matched"]) <= 1
    same_packets(got, want[:100], tolerance=50e-6)
    db = str(world / "var" / "wirewatch.db")
    client = login(create_app(db, TOKEN, {"PCAP_DIR": str(world / "var" / "pcap")}).test_client())
    row = next(a for a in client.get("/api/alerts?type=port_scan").get_json()["alerts"])
    r = client.get(f"/alerts/{row['id']}/pcap")
    assert r.status_code == 200 and r.get_data() == pcap.read_bytes()
    state = read_events(log, "stats")[-1]["stats"]["state"]
    assert state["alert_pcaps_written"] >= 1 and state["alert_pcaps_failed"] == 0


def _records(path) -> list[tuple[int, int, int]]:
    """(incl_len, orig_len, bytes that follow the record header) of each record of a classic pcap."""
    import struct
    data = path.read_bytes()
    assert struct.unpack_from("<I", data)[0] == 0xA1B23C4D  # alert_pcap.write_pcap: little-endian, ns
    out, pos = [], 24
    while pos < len(data):
        incl, orig = struct.unpack_from("<II", data, pos + 8)
        out.append((incl, orig, min(incl, len(data) - pos - 16)))
        pos += 16 + incl
    assert pos == len(data)
    return out


def test_a_short_snaplen_keeps_each_packets_wire_length_in_the_alert_pcap(net, world):
    """With `--snaplen 832` (headers only) an nmap scan whose probes carry 1,200 bytes of payload
    is captured truncated: the alert pcap's records say incl_len = the 832 bytes written and
    orig_len = the probe's length on the wire, as tcpdump (full snaplen, same interface) saw it.
    The live reader once kept no wire length and wrote 832 for both."""
    import struct
    L = net
    log, ref, scan = scan_with_tcpdump_beside(L, world, ("--snaplen", "832"), ("--data-length", "1200"))
    recs = _records(world / "var" / "pcap" / scan["packets"]["pcap"])
    assert len(recs) == scan["packets"]["count"] >= 100
    # tcpdump's view of the same packets: classic pcap, microseconds, this host's byte order
    raw = ref.read_bytes()
    magic = struct.unpack_from("<I", raw)[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    wire_lens, pos = [], 24
    while pos + 16 <= len(raw):
        incl, orig = struct.unpack_from(order + "II", raw, pos + 8)
        wire_lens.append(orig)
        pos += 16 + incl
    probe = max(wire_lens)
    assert probe >= 14 + 20 + 20 + 1200  # the probes' length on the wire, with their payload
    for incl, orig, written in recs:
        assert incl == written == min(orig, 832)  # incl_len: the bytes written
        assert orig in wire_lens  # orig_len: a length tcpdump saw on the wire
    truncated = [orig for incl, orig, _ in recs if incl < orig]
    # the first 100 packets are probes and their answers (RST, SYN-ACK: short, written whole)
    assert len(truncated) >= 40 and set(truncated) == {probe}  # every probe: 832 of `probe` bytes
