"""host_sweep: TCP, ping and refused-ACK sweeps at threshold - 1 and threshold; bounded state."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, ip, many, syn, types
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6EchoRequest
from scapy.layers.l2 import Ether


@pytest.mark.parametrize("v", [4, 6])
def test_host_sweep_threshold_tcp(tmp_path, v):
    def sweep(n):
        return [syn(v, ADDRS[v][0], host(v, h), 40000, 22, T0 + h * 0.01) for h in range(n)]
    assert "host_sweep" not in types(run_packets(tmp_path, sweep(14))[0])
    fired = types(run_packets(tmp_path, sweep(15))[0])["host_sweep"]
    assert fired[0]["evidence"]["distinct_hosts"] == 15 and fired[0]["dest_port"] == 22


@pytest.mark.parametrize("v", [4, 6])
def test_host_sweep_ping(tmp_path, v):
    def echo(dst):
        return ICMP(type=8) if v == 4 else ICMPv6EchoRequest()
    from scapy.layers.inet6 import ICMPv6EchoReply
    pkts = [(T0 + h * 0.01, Ether(dst="02:00:00:00:00:02") / ip(v, ADDRS[v][0], host(v, h)) / echo(h)) for h in range(15)]
    reply = (lambda: ICMP(type=0)) if v == 4 else ICMPv6EchoReply
    pkts += [(T0 + h * 0.01 + 0.001, Ether(dst="02:00:00:00:00:02") / ip(v, host(v, h), ADDRS[v][0]) / reply())
             for h in range(0, 15, 3)]  # five hosts are alive
    fired = types(run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))[0])["host_sweep"]
    assert fired[0]["src_ip"] == ADDRS[v][0] and len(fired[0]["evidence"]["sample_hosts"]) == 15
    assert fired[0]["evidence"]["answers"] == {"replied": 5, "unreachable": 0}


def test_host_sweep_counts_acks_that_hosts_refuse(tmp_path):
    # nmap -PA80: a bare ACK to each host; the live ones answer with a bare RST
    def sweep(n, alive=True):
        pkts = []
        for h in range(n):
            t = T0 + h * 0.01
            pkts.append((t, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst=host(4, h)) / TCP(sport=40000, dport=80, flags="A")))
            if alive:
                pkts.append((t + 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=host(4, h), dst="10.1.0.66") / TCP(sport=80, dport=40000, flags="R")))
        return pkts
    assert "host_sweep" not in types(run_packets(tmp_path, sweep(14))[0])
    # unanswered ACKs count too (a one-way capture of an ACK ping sweep): tests/detect/test_host_sweep_busy.py
    fired = types(run_packets(tmp_path, sweep(15))[0])["host_sweep"]
    assert fired[0]["src_ip"] == "10.1.0.66" and fired[0]["dest_port"] == 80
    assert fired[0]["evidence"]["answers"] == {"replied": 15, "unreachable": 0}


def test_host_sweep_bounded(tmp_path):
    cap = 32
    flood = [(T0 + i * 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src=many(4, i // 2), dst=host(4, i % 2)) / ICMP(type=8))
             for i in range(20 * cap)]  # each forged source pings twice: past the doorkeeper
    sweep = [(T0 + 0.05 + h * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst=host(4, h)) / ICMP(type=8)) for h in range(20)]
    alerts, engine = run_packets(tmp_path, sorted(flood + sweep, key=lambda p: p[0]),
                                 {"detect.host_sweep.max_sources": cap, "detect.host_sweep.max_targets": 4 * cap})
    assert [a["src_ip"] for a in alerts if a["type"] == "host_sweep"] == ["10.1.0.66"]
    st = engine.summary()["detector_state"]
    assert st["host_sweep_groups"] <= cap and st["host_sweep_evicted"] > 0


def test_host_sweep_near_miss_names_the_service_port(tmp_path):
    """12 of 15 hosts swept on port 22: a near miss with the service's port and no destination host."""
    pkts = [syn(4, ADDRS[4][0], host(4, h), 40000, 22, T0 + h * 0.01) for h in range(12)]
    alerts, engine = run_packets(tmp_path, pkts)
    assert "host_sweep" not in types(alerts)
    assert engine.near_misses() == [{"detector": "host_sweep", "src_ip": "10.1.0.66", "dest_port": 22, "figure": 12,
                                     "threshold": 15, "fraction": 0.8, "unit": "hosts", "window": 10.0,
                                     "text": "10.1.0.66: 12 of 15 hosts in 10 s"}]


@pytest.mark.parametrize("v", [4, 6])
def test_a_sweep_of_several_ports_at_once_is_one_alert(tmp_path, v):
    """nmap -sS -p 22,80,443 over a subnet (recorded: one host_sweep alert per port): one alert,
    spoken for by the port with the most hosts, `services` listing each with its hosts; a sweep
    of one port has no such list."""
    ports = {22: 16, 80: 18, 443: 17}  # hosts swept on each port
    pkts = sorted((syn(v, ADDRS[v][0], host(v, h), 40000, port, T0 + h * 0.01 + i * 0.001)
                   for i, (port, n) in enumerate(ports.items()) for h in range(n)), key=lambda p: p[0])
    fired = types(run_packets(tmp_path, pkts)[0])["host_sweep"]
    assert len(fired) == 1 and fired[0]["src_ip"] == ADDRS[v][0] and fired[0]["dest_port"] == 80
    assert [(s["service"], s["distinct_hosts"]) for s in fired[0]["evidence"]["services"]] == \
        [("TCP port 80", 18), ("TCP port 443", 17), ("TCP port 22", 16)]
    one = [syn(v, ADDRS[v][0], host(v, h), 40000, 22, T0 + h * 0.01) for h in range(16)]
    assert "services" not in types(run_packets(tmp_path, one)[0])["host_sweep"][0]["evidence"]
