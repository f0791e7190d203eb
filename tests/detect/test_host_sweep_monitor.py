"""host_sweep: a monitor asks the same hosts again after they answered, a sweep asks each once.

tests/benign/fping-monitor.pcap (6 s of `fping -c 20 -p 1000` over 27 hosts, all answering) and
tests/benign/tcp-checks.pcap (two rounds of Nagios-style `nc -z` checks of ports 22, 25 and 80
of the same 27 hosts) were recorded in the held-out benign lab (tests/benign/README.md). Their
first round alone is a sweep and must still alert; a sweep amid the monitor, or one that retries
a few hosts, too."""

from __future__ import annotations

from pathlib import Path

from conftest import run_file, run_packets
from crafted import T0, types
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from wirewatch.craft import write_pcap

HERE = Path(__file__).resolve().parent.parent / "benign"
MONITOR = "172.31.60.30"


def sweeps(alerts: list[dict]) -> list[dict]:
    return types(alerts).get("host_sweep", [])


def first_round(src: Path, dst: Path, seconds: float) -> str:
    """The capture's first `seconds` (its monitor's first round only)."""
    pkts = rdpcap(str(src))
    t0 = float(pkts[0].time)
    return write_pcap(str(dst), [(float(p.time), p) for p in pkts if float(p.time) < t0 + seconds])


def test_ping_monitor_rounds_are_not_a_sweep():
    alerts, _ = run_file(str(HERE / "fping-monitor.pcap"))
    assert alerts == []  # before: host_sweep from 172.31.60.30 (27 hosts, ICMP echo)


def test_tcp_checks_are_not_a_sweep():
    alerts, _ = run_file(str(HERE / "tcp-checks.pcap"))
    assert alerts == []  # before: host_sweep from 172.31.60.30 (TCP 22, 25 and 80 of 27 hosts)


def test_the_monitors_first_round_alone_is_a_sweep(tmp_path):
    # one round of the same probes, never repeated: what a sweep looks like (decided at the end)
    for name in ("fping-monitor.pcap", "tcp-checks.pcap"):
        alerts, _ = run_file(first_round(HERE / name, tmp_path / name, 0.9))
        found = sweeps(alerts)
        assert [a["src_ip"] for a in found] == [MONITOR], name
        assert found[0]["evidence"]["distinct_hosts"] == 27 and found[0]["evidence"]["monitored"] == 0


def echo_round(src: str, hosts: list[str], t: float, answer: bool = True) -> list:
    out = []
    for i, h in enumerate(hosts):
        out.append((t + i * 0.002, Ether(dst="02:00:00:00:00:02") / IP(src=src, dst=h) / ICMP(type=8, id=7, seq=int(t) % 65536)))
        if answer:
            out.append((t + i * 0.002 + 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src=h, dst=src) / ICMP(type=0, id=7, seq=int(t) % 65536)))
    return out


def test_a_sweep_amid_a_monitor_still_alerts(tmp_path):
    hosts = [f"10.7.0.{i}" for i in range(10, 40)]
    pkts = []
    for r in range(12):  # the monitor: the same 30 hosts every second, all answering
        pkts += echo_round("10.7.0.2", hosts, T0 + r)
    pkts += echo_round("10.7.0.66", hosts, T0 + 5.5)  # the sweeper: the same hosts, once
    alerts, _ = run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))
    found = sweeps(alerts)
    assert [a["src_ip"] for a in found] == ["10.7.0.66"]
    assert found[0]["evidence"]["distinct_hosts"] == 30


def test_a_sweep_that_retries_a_few_hosts_still_alerts(tmp_path):
    # nmap re-sends a probe now and then (dev07 pings one host twice; nping re-sends to the host
    # before each address that does not resolve): a few hosts asked again, not most
    hosts = [f"10.7.0.{i}" for i in range(10, 30)]
    pkts = echo_round("10.7.0.66", hosts, T0) + echo_round("10.7.0.66", hosts[:3], T0 + 1)
    alerts, _ = run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))
    found = sweeps(alerts)
    assert [a["src_ip"] for a in found] == ["10.7.0.66"]
    ev = found[0]["evidence"]
    assert ev["distinct_hosts"] == 20 and ev["monitored"] == 3


def test_silent_hosts_asked_again_are_still_swept(tmp_path):
    # a sweep that retries hosts that never answered (fping, nmap): those are not monitored
    hosts = [f"10.7.0.{i}" for i in range(10, 30)]
    pkts = echo_round("10.7.0.66", hosts, T0, answer=False) + echo_round("10.7.0.66", hosts, T0 + 1, answer=False)
    alerts, _ = run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))
    found = sweeps(alerts)
    assert [a["src_ip"] for a in found] == ["10.7.0.66"] and found[0]["evidence"]["distinct_hosts"] == 20
