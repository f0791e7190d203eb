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


def test_nmap_scan_alert_has_its_packets_in_var_pcap(net, world):
    for tool in ("nmap", "tcpdump"):
        need(tool)
    L = net
    ref = world / "tcpdump.pcap"
    dump = L.popen(L.sensor, "tcpdump", "-i", L.sensor_if, "-U", "-n", "-w", str(ref), "-c", "2000",
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = world / "logs" / "alerts.json"
    proc = L.popen(L.sensor, sys.executable, "-m", "wirewatch", "monitor", "-i", L.sensor_if, "--quiet",
                   "--logfile", str(log), "--stats-interval", "1", cwd=str(world),
                   env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True)
    deadline = time.time() + 15
    while time.time() < deadline and not read_events(log, "stats"):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    L.run(L.attacker, "nmap", "-sS", "-Pn", "-n", "-p", "1-150", "--max-retries", "0", L.sensor_ip,
          timeout=60)
    deadline = time.time() + 8
    while time.time() < deadline and not any(a["type"] == "port_scan" for a in read_events(log)):
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    dump.send_signal(signal.SIGINT)
    dump.wait(timeout=10)
    assert proc.returncode == 0 and "failed" not in err, err
    scan = next(a for a in read_events(log) if a["type"] == "port_scan")
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
