"""SIGHUP reload on a live sensor (reload.py, sensor.py): a real `wirewatch monitor` in network
namespaces this test creates, real nmap scans, a real SIGHUP after the threshold in its TOML file
changed. Scans before the signal are judged by the old threshold, scans after it by the new one.
Needs root; bounded: three scans of at most 250 ports, every wait capped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SRC, read_events
from netns import can_create_namespaces

pytestmark = pytest.mark.skipif(not can_create_namespaces(), reason="live tests need root and iproute2")
A, B, C = "10.203.0.71", "10.203.0.72", "10.203.0.73"  # three scanners: each its own windows and cooldown


def wait(what, limit: float, why: str):
    deadline = time.time() + limit
    while time.time() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(why)


def write_config(path: Path, threshold: int) -> None:
    # distributed_scan off: two scanners of one host below the old threshold would be one
    path.write_text(f"[detect.port_scan]\nthreshold = {threshold}\n\n[detect.distributed_scan]\nenabled = false\n")
    os.chmod(path, 0o644)


def scan(net, src: str, ports: str) -> None:
    r = net.run(net.attacker, "nmap", "-n", "-Pn", "-sS", "-S", src, "-e", net.attacker_if, "-p", ports,
                "-T4", "--max-retries", "0", net.sensor_ip, timeout=60)
    assert r.returncode == 0, r.stderr


def test_sighup_applies_a_changed_threshold_to_scans_after_it_and_not_before(net, world):
    if shutil.which("nmap") is None:
        pytest.fail("nmap is not installed (.ci/run installs it)")
    for ip in (A, B, C):
        net.add_address(net.attacker, net.attacker_if, f"{ip}/24")
    cfg, log, err = world / "wirewatch.toml", world / "logs" / "alerts.json", world / "stderr.txt"
    write_config(cfg, 200)
    with err.open("w") as errf:
        proc = net.popen(net.sensor, sys.executable, "-m", "wirewatch", "monitor", "-i", net.sensor_if, "--quiet",
                         "--config", str(cfg), "--logfile", str(log), "--db", "", "--stats-interval", "1",
                         stdout=subprocess.DEVNULL, stderr=errf, text=True, cwd=str(world),
                         env={**os.environ, "PYTHONPATH": SRC})
    try:
        wait(lambda: read_events(log, "stats"), 30, f"the sensor did not start: {err.read_text()}")
        scans = lambda src: [a for a in read_events(log) if a["type"] == "port_scan" and a.get("src_ip") == src]  # noqa: E731
        # before: 100 ports are below the threshold of 200, 250 are above it
        scan(net, B, "2000-2099")
        scan(net, A, "2000-2249")
        (a,) = wait(lambda: scans(A), 20, f"no port_scan from {A} under threshold 200: {read_events(log)}")
        assert scans(B) == []  # B's probes came first, so they were analysed before A's alert
        assert a["evidence"]["threshold"] == 200 and a["evidence"]["distinct_ports"] >= 200
        # the file changes, the sensor gets SIGHUP and says it reloaded
        write_config(cfg, 50)
        proc.send_signal(signal.SIGHUP)
        wait(lambda: "reloaded config" in err.read_text(), 20, f"no reload: {err.read_text()}")
        assert proc.poll() is None
        # after: the same 100 ports from a new source are a scan now
        scan(net, C, "3000-3099")
        (c,) = wait(lambda: scans(C), 20, f"no port_scan from {C} under threshold 50: {read_events(log)}")
        assert c["evidence"]["threshold"] == 50 and 50 <= c["evidence"]["distinct_ports"] <= 100
        assert scans(B) == []  # B sent nothing since: nothing re-judged it
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.read_text()
    assert read_events(log, "stats")[-1]["stats"]["final"] is True
