"""Live capture sees every packet of a bounded replay (issue 11): tcpreplay sends a known
capture onto a veth in namespaces this test creates, the sensor on the peer captures with
its default snapshot, headers only (decode.headers_snaplen, 832 bytes), through the compiled dispatch loop and through pcapy-ng.
Every packet is analysed, none dropped, and the wire lengths come from the IP headers, so
the byte count is the whole packets' although only their headers were captured."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from netns import can_create_namespaces, lab
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from wirewatch.capture import live
from wirewatch.craft import BASE_TS, write_pcap
from wirewatch.decode import headers_snaplen

pytestmark = pytest.mark.skipif(not can_create_namespaces() or shutil.which("tcpreplay") is None,
                                reason="needs root, iproute2 and tcpreplay")
SRC = str(Path(__file__).resolve().parents[2] / "src")
LOOPS = 100  # 200 distinct packets sent 100 times: 20,000 packets in about two seconds


def replay_capture(path: str) -> tuple[int, int]:
    """200 packets (MTU-size TCP data, ACKs, a VXLAN-tunnelled segment, UDP): (packets, bytes)."""
    pkts = []
    for i in range(200):
        e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        p = [e / IP(src="10.77.0.1", dst="10.77.0.2") / TCP(sport=40000 + i, dport=443, flags="PA") / Raw(b"x" * 1448),
             e / IP(src="10.77.0.2", dst="10.77.0.1") / TCP(sport=443, dport=40000 + i, flags="A"),
             e / IP(src="10.77.0.3", dst="10.77.0.4") / UDP(sport=5000, dport=4789) / VXLAN(vni=7) / Ether() /
             IP(src="10.88.0.1", dst="10.88.0.2") / TCP(sport=1, dport=80, flags="PA") / Raw(b"y" * 1300),
             e / IP(src="10.77.0.5", dst="10.77.0.6") / UDP(sport=53, dport=33000) / Raw(b"z" * 512)][i % 4]
        pkts.append((BASE_TS + i * 0.001, p))
    write_pcap(path, pkts)
    return len(pkts), sum(len(bytes(p)) for _, p in pkts)


@pytest.mark.parametrize("reader", ["compiled", "pcapy"])
def test_every_packet_of_a_replay_is_analysed(reader, tmp_path):
    if reader == "compiled":
        assert live.compiled_loop(), "libpcap could not be loaded by native/pcapwalk.c"
    capture = str(tmp_path / "replay.pcap")
    count, size = replay_capture(capture)
    workdir = Path(tempfile.mkdtemp(prefix="wwlive", dir="/tmp"))
    os.chmod(workdir, 0o755)
    log = workdir / "logs" / "alerts.json"
    env = {**os.environ, "PYTHONPATH": SRC, **({"WIREWATCH_LIVE_READER": "pcapy"} if reader == "pcapy" else {})}
    try:
        with lab() as L:
            mon = L.popen(L.sensor, sys.executable, "-m", "wirewatch", "monitor", "-i", L.sensor_if, "--quiet",
                          "--logfile", str(log), "--stats-interval", "0.5", "--buffer-size", "256",
                          "--bpf", "net 10.77.0.0/16",
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=str(workdir), env=env)
            deadline = time.time() + 20
            while not (log.exists() and log.stat().st_size) and time.time() < deadline:
                assert mon.poll() is None, mon.communicate()
                time.sleep(0.1)
            sent = L.run(L.attacker, "tcpreplay", "-q", "-i", L.attacker_if, "--pps=10000", f"--loop={LOOPS}", capture,
                         timeout=60)
            assert sent.returncode == 0, sent.stderr
            time.sleep(1.0)
            mon.send_signal(signal.SIGTERM)
            _, err = mon.communicate(timeout=30)
        assert mon.returncode == 0, err
        assert f"(pcap, snaplen {headers_snaplen()})" in err, err  # the default: headers only
        stats = [json.loads(line) for line in log.read_text().splitlines() if '"stats"' in line][-1]["stats"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # pcapy-ng sets the BPF filter after activating the handle: a few packets of the namespace's
    # own (IPv6 neighbour discovery as the link comes up) may be captured before it applies
    extra = stats["decoder"]["pkts"] - count * LOOPS
    kernel_extra = stats["capture"]["kernel_packets"] - count * LOOPS
    if reader == "compiled":
        assert extra == kernel_extra == 0, stats
    else:
        assert 0 <= extra <= kernel_extra <= 10, stats
    assert stats["capture"]["kernel_drops"] == 0 and stats["decoder"]["errors"] == {}
    if extra == 0:
        assert stats["decoder"]["bytes"] == size * LOOPS  # wire lengths, from headers only
