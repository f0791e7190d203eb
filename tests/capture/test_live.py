"""Live sensor in network namespaces this test creates, with real tools from Debian.

Needs root (namespaces, capture); CI runs as root. Every load is bounded by count and
time, and the namespaces are deleted even when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SRC, need
from netns import Monitor, can_create_namespaces
from ports import free_port

pytestmark = pytest.mark.skipif(not can_create_namespaces(), reason="live tests need root and iproute2")


def test_nmap_scan_alerts_live_within_2s_and_sensor_is_not_root(net, world):
    need("nmap")
    m = Monitor(net, world)
    uids = Path(f"/proc/{m.proc.pid}/status").read_text().split("Uid:")[1].split("\n")[0].split()
    children = subprocess.run(["pgrep", "-P", str(m.proc.pid)], capture_output=True, text=True).stdout.split()
    pid = int(children[0]) if children else m.proc.pid  # `ip netns exec` execs, so usually the same pid
    uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split("\n")[0].split()
    assert all(u != "0" for u in uids), uids
    net.run(net.attacker, "nmap", "-sS", "-Pn", "-n", "-p", "1-200", "--max-retries", "0", net.sensor_ip, timeout=60)
    done = time.time()
    latency = m.wait_for("port_scan", done)
    assert latency <= 2.0
    scans = [a for a in m.events() if a["type"] == "port_scan"]
    assert scans[0]["src_ip"] == net.attacker_ip and scans[0]["in_iface"] == net.sensor_if
    rc, out, err = m.stop()
    assert rc == 0 and "[ALERT] Possible port scan detected from 10.203.0.66" in out
    assert "failed" not in err, err  # no sink or detector broke after the privilege drop
    import sqlite3
    stored = sqlite3.connect(str(world / "var" / "wirewatch.db")).execute(
        "select type, src_ip from alerts where type = 'port_scan'").fetchall()
    assert stored == [("port_scan", net.attacker_ip)]
    final = m.events("stats")[-1]["stats"]
    assert final["final"] is True and final["capture"]["kernel_packets"] >= 200
    assert final["capture"]["kernel_drops"] == 0


def test_hping3_syn_flood_and_suspicious_port(net, world):
    need("hping3")
    m = Monitor(net, world)
    net.run(net.attacker, "timeout", "10", "hping3", "-S", "-p", "80", "-i", "u200", "-c", "3000", "-q",
            net.sensor_ip, timeout=30)
    assert m.wait_for("syn_flood", time.time()) <= 2.0
    flood = [a for a in m.events() if a["type"] == "syn_flood"][0]
    assert flood["dest_ip"] == net.sensor_ip and flood["evidence"]["syns"] >= 400
    listener = net.popen(net.sensor, "timeout", "10", "nc", "-l", "-p", "4444", stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    net.run(net.attacker, "sh", "-c", f"echo hi | timeout 3 nc -q 0 {net.sensor_ip} 4444", timeout=10)
    assert m.wait_for("suspicious_port", time.time()) <= 2.0
    listener.kill()
    assert m.stop()[0] == 0


def test_benign_curl_and_iperf3_raise_nothing(net, world):
    need("curl")
    need("iperf3")
    www = net.popen(net.sensor, sys.executable, "-m", "http.server", "80", "--bind", net.sensor_ip,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(world))
    perf = net.popen(net.sensor, "iperf3", "-s", "-1", "-B", net.sensor_ip, stdout=subprocess.DEVNULL)
    time.sleep(0.8)
    m = Monitor(net, world)
    for _ in range(20):
        net.run(net.attacker, "curl", "-s", "-o", "/dev/null", f"http://{net.sensor_ip}/", timeout=10)
    net.run(net.attacker, "iperf3", "-c", net.sensor_ip, "-t", "2", "-b", "100M", timeout=20)
    time.sleep(1.5)
    rc, _, _ = m.stop()
    www.kill()
    perf.kill()
    assert rc == 0
    assert m.events() == []
    assert m.events("stats")[-1]["stats"]["decoder"]["pkts"] > 1000


def test_sighup_reopens_log_and_reloads_blocklist_then_sigterm_flushes(net, world):
    need("curl")
    blk = world / "block.txt"
    blk.write_text("192.0.2.1\n")
    os.chmod(blk, 0o644)
    cfg = world / "wirewatch.toml"
    cfg.write_text(f'[detect.blacklist]\nfiles = ["{blk}"]\n')
    os.chmod(cfg, 0o644)
    bad = "10.203.0.99"
    net.add_address(net.attacker, net.attacker_if, f"{bad}/24")
    m = Monitor(net, world, "--config", str(cfg))
    net.run(net.attacker, "curl", "-s", "--max-time", "1", "--interface", bad, f"http://{net.sensor_ip}:81/", timeout=10)
    time.sleep(1.0)
    assert [a for a in m.events() if a["type"] == "blacklist"] == []
    rotated = m.log.with_name("alerts.json.1")
    m.log.rename(rotated)
    blk.write_text("192.0.2.1\n10.203.0.99  # added while running\n")
    m.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    net.run(net.attacker, "curl", "-s", "--max-time", "1", "--interface", bad, f"http://{net.sensor_ip}:81/", timeout=10)
    m.wait_for("blacklist", time.time())
    old = [json.loads(line) for line in rotated.read_text().splitlines()]
    assert old and not [r for r in old if r.get("type") == "blacklist"]
    rc, _, err = m.stop(signal.SIGTERM)
    assert rc == 0, err
    assert "reloaded" in err
    alerts = [a for a in m.events() if a["type"] == "blacklist"]
    assert alerts[0]["evidence"]["entry"] == bad and alerts[0]["src_ip"] == bad
    assert m.events("stats")[-1]["stats"]["final"] is True


def test_any_interface_and_bpf(net, world):
    need("nmap")
    need("ping")
    m = Monitor(net, world, "--bpf", "tcp", iface="any")  # Linux cooked capture across interfaces
    net.run(net.attacker, "ping", "-f", "-c", "1500", "-q", net.sensor_ip, timeout=20)  # a flood the filter hides
    net.run(net.attacker, "nmap", "-sS", "-Pn", "-n", "-p", "1-60", "--max-retries", "0", net.sensor_ip, timeout=60)
    assert m.wait_for("port_scan", time.time()) <= 2.0
    rc, _, _ = m.stop()
    assert rc == 0
    final = m.events("stats")[-1]["stats"]
    assert final["decoder"]["invalid"] == 0 and final["decoder"]["pkts"] >= 100
    events = m.events()
    assert {a["type"] for a in events} == {"port_scan"}  # no traffic_burst: ICMP was filtered
    # the probe of watched port 23 is one of the scan's: in its evidence, not an alert of its own
    assert any(a["evidence"].get("watched_ports_touched") == [23] for a in events)


def test_nmap_ack_scan_is_a_port_scan(net, world):
    need("nmap")
    m = Monitor(net, world)
    net.run(net.attacker, "nmap", "-sA", "-Pn", "-n", "-p", "1-100", "--max-retries", "0", net.sensor_ip, timeout=60)
    assert m.wait_for("port_scan", time.time()) <= 2.0
    rc, _, _ = m.stop()
    assert rc == 0
    scans = [a for a in m.events() if a["type"] == "port_scan"]
    assert scans[0]["src_ip"] == net.attacker_ip and scans[0]["evidence"]["answers"]["unfiltered"] >= 20
    assert all(a["src_ip"] == net.attacker_ip for a in m.events())  # the target's refusals blame nobody


def test_scapy_capture_fallback(net, world):
    need("nmap")
    m = Monitor(net, world, "--capture", "scapy")
    net.run(net.attacker, "nmap", "-sS", "-Pn", "-n", "-p", "1-60", "--max-retries", "0", net.sensor_ip, timeout=60)
    assert m.wait_for("port_scan", time.time()) <= 2.0
    rc, _, err = m.stop()
    assert rc == 0 and "(scapy, snaplen 832)" in err
    assert m.events("stats")[-1]["stats"]["decoder"]["pkts"] >= 100


def test_unknown_interface_and_no_permission(tmp_path):
    r = subprocess.run([sys.executable, "-m", "wirewatch", "monitor", "-i", "nosuch9"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 2 and "unknown interface 'nosuch9' (interfaces: " in r.stderr and "lo" in r.stderr
    if shutil.which("setpriv"):
        r = subprocess.run(["setpriv", "--bounding-set=-net_raw,-net_admin", sys.executable, "-m", "wirewatch",
                            "monitor", "-i", "lo"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC})
        assert r.returncode == 2
        assert r.stderr.startswith("wirewatch: live capture needs root or CAP_NET_RAW on lo")


def test_run_serves_the_dashboard_unprivileged_beside_the_sensor(net, world):
    need("nmap")
    env = {**os.environ, "PYTHONPATH": SRC, "WIREWATCH_WEB__TOKEN": "live-run-token"}
    port = str(free_port())  # the sensor's namespace is ours, but `ps` below sees every checkout's processes
    proc = net.popen(net.sensor, sys.executable, "-m", "wirewatch", "run", "-i", net.sensor_if, "--port", port,
                     "--quiet", "--stats-interval", "1", cwd=str(world), env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/api/alerts"
    auth = ["-H", "Authorization: Bearer live-run-token"]
    deadline = time.time() + 20
    while time.time() < deadline and net.run(net.sensor, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                             *auth, url).stdout != "200":
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)
    net.run(net.attacker, "nmap", "-sS", "-Pn", "-n", "-p", "1-100", "--max-retries", "0", net.sensor_ip, timeout=60)
    deadline = time.time() + 10
    body = ""
    while time.time() < deadline and "port_scan" not in body:
        body = net.run(net.sensor, "curl", "-s", *auth, url).stdout
        time.sleep(0.3)
    assert "Possible port scan detected from 10.203.0.66" in body
    assert net.run(net.sensor, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "401"
    users = subprocess.run(["ps", "-ww", "-eo", "user,args"], capture_output=True, text=True).stdout.splitlines()
    ours = [line for line in users if f"--port {port}" in line and "wirewatch" in line]
    assert len(ours) == 2 and all(line.split()[0] != "root" for line in ours), ours
    # the store reaches the dashboard in its environment: a command line is every user's to read,
    # and a PostgreSQL URL from the config may hold a password (the alerts above came through it)
    assert not any("--db" in line or "wirewatch.db" in line for line in ours), ours
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
