"""Each detector at threshold - 1 (silent) and at threshold (fires), IPv4 and IPv6,
on crafted packets with explicit timestamps; plus floods of 10x the key cap."""

from __future__ import annotations

import pytest
from conftest import run_packets
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from wirewatch.craft import BASE_TS

T0 = BASE_TS
ADDRS = {4: ("10.1.0.66", "10.1.0.{}", "10.1.{}.{}"), 6: ("fd00:1::66", "fd00:1::{:x}", "fd00:1::{:x}:{:x}")}


def ip(v: int, src: str, dst: str):
    return IP(src=src, dst=dst) if v == 4 else IPv6(src=src, dst=dst)


def host(v: int, i: int) -> str:
    return ADDRS[v][1].format(i + 1)


def many(v: int, i: int) -> str:
    return ADDRS[v][2].format(i // 250 + 2, i % 250 + 1)


def types(alerts) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for a in alerts:
        out.setdefault(a["type"], []).append(a)
    return out


def syn(v, src, dst, sport, dport, t):
    return (t, Ether(dst="02:00:00:00:00:02") / ip(v, src, dst) / TCP(sport=sport, dport=dport, flags="S"))


# ---- port scan ----------------------------------------------------------------------
def scan(v: int, n: int, gap: float = 0.01, src: str | None = None, t0: float = T0):
    src = src or ADDRS[v][0]
    return [syn(v, src, host(v, 0), 40000, 1000 + p, t0 + p * gap) for p in range(n)]


@pytest.mark.parametrize("v", [4, 6])
def test_port_scan_threshold(tmp_path, v):
    assert "port_scan" not in types(run_packets(tmp_path, scan(v, 19))[0])
    fired = types(run_packets(tmp_path, scan(v, 20))[0])["port_scan"]
    assert len(fired) == 1 and fired[0]["src_ip"] == ADDRS[v][0]
    assert fired[0]["evidence"]["distinct_ports"] == 20 and fired[0]["evidence"]["mode"] == "short window"


def test_port_scan_counts_stealth_and_udp_probes(tmp_path):
    flags = ["F", "", "FPU", "SF"]
    pkts = [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / TCP(sport=5, dport=100 + i, flags=flags[i % 4]))
            for i in range(12)]
    pkts += [(T0 + 1 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / UDP(sport=5000, dport=200 + i)) for i in range(8)]
    assert types(run_packets(tmp_path, pkts)[0])["port_scan"][0]["evidence"]["distinct_ports"] == 20


def ack_scan(v: int, ports: int, answered: bool = True, gap: float = 0.002):
    """nmap -sA: bare ACKs to many ports; an unfiltered target answers each with a bare RST."""
    scanner, target = ADDRS[v][0], host(v, 0)
    pkts = []
    for p in range(ports):
        t = T0 + p * gap
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / ip(v, scanner, target) / TCP(sport=51000, dport=1000 + p, flags="A")))
        if answered:
            pkts.append((t + 0.0002, Ether(dst="02:00:00:00:00:02") / ip(v, target, scanner) / TCP(sport=1000 + p, dport=51000, flags="R")))
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_ack_scan_counts_probes_answered_by_bare_rst(tmp_path, v):
    assert "port_scan" not in types(run_packets(tmp_path, ack_scan(v, 19))[0])
    fired = types(run_packets(tmp_path, ack_scan(v, 20))[0])["port_scan"]
    assert len(fired) == 1 and fired[0]["src_ip"] == ADDRS[v][0] and fired[0]["dest_ip"] == host(v, 0)
    assert fired[0]["evidence"]["answers"]["unfiltered"] == 20 and fired[0]["evidence"]["answers"]["closed"] == 0


def test_acks_that_are_not_refused_are_not_probes(tmp_path):
    # live connections to 40 ports (ACKs nobody refuses), an unanswered ACK scan, and SYN-flood
    # backscatter (SYN-ACKs refused by bare RSTs): no port scan anywhere
    pkts = ack_scan(4, 40, answered=False)
    for p in range(40):
        t = T0 + 1 + p * 0.002
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.77") / TCP(sport=80, dport=2000 + p, flags="SA")))
        pkts.append((t + 0.0002, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.77", dst="10.1.0.1") / TCP(sport=2000 + p, dport=80, flags="R")))
    assert run_packets(tmp_path, sorted(pkts, key=lambda x: x[0]))[0] == []


def test_target_refusing_a_big_ack_scan_is_not_a_flood(tmp_path):
    alerts = types(run_packets(tmp_path, ack_scan(4, 1500, gap=0.001))[0])
    assert alerts["port_scan"][0]["src_ip"] == ADDRS[4][0]
    assert all(a["src_ip"] == ADDRS[4][0] for a in alerts.get("traffic_burst", [])), alerts["traffic_burst"]


@pytest.mark.parametrize("v", [4, 6])
def test_fragmented_scan_counts_like_a_plain_one(tmp_path, v):
    """nmap -f: each SYN split so the first fragment carries the ports but not the flags."""
    from scapy.layers.inet import fragment
    from scapy.layers.inet6 import IPv6ExtHdrFragment, fragment6
    pkts = []
    for i in range(20):
        probe = TCP(sport=40000, dport=100 + i, flags="S")
        frags = (fragment(IP(src=ADDRS[4][0], dst=host(4, 0)) / probe, fragsize=8) if v == 4 else
                 fragment6(IPv6(src=ADDRS[6][0], dst=host(6, 0)) / IPv6ExtHdrFragment() / probe, 56))
        pkts += [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / f) for f in frags]
    assert len(pkts) > 20
    alerts = types(run_packets(tmp_path, pkts)[0])
    assert set(alerts) == {"port_scan"} and alerts["port_scan"][0]["evidence"]["distinct_ports"] == 20


def test_slow_scan_uses_the_long_window(tmp_path):
    alerts = types(run_packets(tmp_path, scan(4, 30, gap=1.0))[0])["port_scan"]
    assert alerts[0]["evidence"]["mode"].startswith("long window") and alerts[0]["evidence"]["distinct_ports"] == 25
    assert "port_scan" not in types(run_packets(tmp_path, scan(4, 24, gap=1.0))[0])


def test_replies_from_a_server_are_not_a_scan(tmp_path):
    # a DNS server answering 100 client ports, a web server SYN-ACKing 100 connections
    pkts = [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=53, dport=30000 + i)) for i in range(100)]
    pkts += [(T0 + 2 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=80, dport=30000 + i, flags="SA"))
             for i in range(100)]
    assert run_packets(tmp_path, pkts)[0] == []


def test_decoy_scan_one_alert_per_source(tmp_path):
    pkts = []
    for d, src in enumerate(["10.1.0.66", "10.9.9.9", "10.8.8.8"]):
        pkts += scan(4, 25, src=src, t0=T0 + d * 0.001)
    fired = types(run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))[0])["port_scan"]
    assert sorted(a["src_ip"] for a in fired) == ["10.1.0.66", "10.8.8.8", "10.9.9.9"]


def test_one_packet_random_sources_never_get_state(tmp_path):
    flood = [syn(4, many(4, i), "10.1.0.1", 1000 + i % 50, 80, T0 + i * 0.0005) for i in range(2000)]
    alerts, engine = run_packets(tmp_path, flood + scan(4, 25, t0=T0 + 1.1))
    st = engine.summary()["detector_state"]
    assert st["port_scan_groups"] == 1 and st["port_scan_seen_once"] == 2000
    assert [a["evidence"]["distinct_ports"] for a in alerts if a["type"] == "port_scan"] == [25]  # none lost


def test_port_scan_state_bounded_under_source_flood(tmp_path):
    cap = 64
    # every forged source probes twice, so each passes the doorkeeper and takes state
    flood = [syn(4, many(4, i // 2), "10.1.0.1", 1000 + i % 50, 80 + i % 7, T0 + i * 0.00025) for i in range(20 * cap)]
    pkts = sorted(flood + scan(4, 30, gap=0.01, t0=T0 + 0.1), key=lambda p: p[0])
    alerts, engine = run_packets(tmp_path, pkts, {"detect.port_scan.max_sources": cap, "detect.port_scan.max_probes": 16 * cap})
    assert [a["src_ip"] for a in alerts if a["type"] == "port_scan"] == ["10.1.0.66"]
    st = engine.summary()["detector_state"]
    assert st["port_scan_groups"] <= cap and st["port_scan_items"] <= 16 * cap
    assert st["port_scan_evicted"] > 0


# ---- host sweep ---------------------------------------------------------------------
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
    assert "host_sweep" not in types(run_packets(tmp_path, sweep(30, alive=False))[0])  # could be live connections
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


# ---- distributed scan ---------------------------------------------------------------
def slices(v, sources, per):
    pkts = []
    for s in range(sources):
        src = ADDRS[v][1].format(100 + s)
        pkts += [syn(v, src, host(v, 0), 40000, 2000 + s * per + p, T0 + s * 0.5 + p * 0.01) for p in range(per)]
    return sorted(pkts, key=lambda p: p[0])


@pytest.mark.parametrize("v", [4, 6])
def test_distributed_scan_threshold(tmp_path, v):
    assert "distributed_scan" not in types(run_packets(tmp_path, slices(v, 2, 14) + slices(v, 1, 1)[:1])[0])
    alerts = types(run_packets(tmp_path, slices(v, 3, 10))[0])
    assert "port_scan" not in alerts
    ev = alerts["distributed_scan"][0]["evidence"]
    assert ev["distinct_ports"] == 30 and ev["sources"] == 3
    assert sorted(m["distinct_ports"] for m in ev["members"]) == [10, 10, 10]


def test_single_scanner_is_not_distributed(tmp_path):
    alerts = types(run_packets(tmp_path, scan(4, 40) + [syn(4, "10.1.0.7", host(4, 0), 5555, 80, T0 + 0.5)])[0])
    assert "port_scan" in alerts and "distributed_scan" not in alerts


# ---- SYN flood ----------------------------------------------------------------------
def flood(v, n, random_sources=True):
    return [syn(v, many(v, i) if random_sources else ADDRS[v][0], host(v, 0), 1024 + i % 60000, 80, T0 + i * 0.001)
            for i in range(n)]


@pytest.mark.parametrize("v", [4, 6])
def test_syn_flood_threshold_random_sources(tmp_path, v):
    assert "syn_flood" not in types(run_packets(tmp_path, flood(v, 399))[0])
    fired = types(run_packets(tmp_path, flood(v, 400))[0])["syn_flood"]
    ev = fired[0]["evidence"]
    assert fired[0]["dest_ip"] == host(v, 0) and abs(ev["distinct_sources"] - 400) <= 40 and ev["completion_ratio"] == 0
    assert ev["top_sources"] == [] and ev["peak_syn_per_s"] >= 400  # every source sent one SYN


def test_syn_flood_names_repeat_sources_and_estimates_many():
    import numpy as np

    from wirewatch.detect.count import hll
    from wirewatch.detect.count.kernels import hash_cols
    from wirewatch.detect.count.table import KeyTable
    t = KeyTable(4, hll.COLUMNS)
    counter = hll.WindowedHLL(10.0)
    slots, _, _ = t.upsert(np.array([7], np.uint64), np.array([T0]))
    for n in (5, 50, 5000, 100000):
        t.cols["hll"][:] = 0
        src = hash_cols(np.arange(n, dtype=np.uint64) + 1000)
        counter.add(t.cols, np.repeat(slots, n), src, np.full(n, T0))
        est = counter.estimate(t.cols, slots, T0)[0]
        assert abs(est - n) <= max(1, 0.15 * n), (n, est)
    assert counter.estimate(t.cols, slots, T0 + 25)[0] == 0  # outside the window


def test_syn_flood_top_sources_are_the_repeaters(tmp_path):
    pkts = flood(4, 400) + [syn(4, "10.1.0.66", host(4, 0), 2000 + i, 80, T0 + 0.4 + i * 0.001) for i in range(50)]
    ev = types(run_packets(tmp_path, pkts)[0])["syn_flood"][0]["evidence"]
    assert ev["top_sources"][0] == {"src_ip": "10.1.0.66", "syns": 50}


def test_syn_flood_silent_when_handshakes_complete(tmp_path):
    pkts = []
    for i in range(450):
        c, s = many(4, i), "10.1.0.1"
        t = T0 + i * 0.002
        pkts += [syn(4, c, s, 2000, 80, t),
                 (t + 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src=s, dst=c) / TCP(sport=80, dport=2000, flags="SA")),
                 (t + 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=c, dst=s) / TCP(sport=2000, dport=80, flags="A"))]
    assert "syn_flood" not in types(run_packets(tmp_path, pkts)[0])


def test_syn_flood_state_bounded(tmp_path):
    alerts, engine = run_packets(tmp_path, flood(4, 640), {"detect.syn_flood.max_sources": 64,
                                                            "detect.failed_handshake.max_attempts": 64})
    assert "syn_flood" in types(alerts)
    st = engine.summary()["detector_state"]
    assert st["syn_flood_sources_keys"] <= 64 and st["syn_flood_sources_seen_once"] >= 500  # one SYN: no state
    assert st["handshakes_tracked"] <= 64 and st["handshakes_evicted"] > 0


# ---- failed handshakes ---------------------------------------------------------------
def failures(v, n, answer="RA"):
    pkts = []
    a, b = ADDRS[v][0], host(v, 0)
    for i in range(n):
        t = T0 + i * 0.3
        pkts.append(syn(v, a, b, 30000 + i, 8081, t))
        if answer:
            pkts.append((t + 0.001, Ether(dst="02:00:00:00:00:02") / ip(v, b, a) / TCP(sport=8081, dport=30000 + i, flags=answer)))
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_failed_handshake_rst_threshold(tmp_path, v):
    assert "failed_handshake" not in types(run_packets(tmp_path, failures(v, 7))[0])
    fired = types(run_packets(tmp_path, failures(v, 8))[0])["failed_handshake"]
    ev = fired[0]["evidence"]
    assert ev["failed_handshakes"] == 8 and ev["answered_rst"] == 8 and ev["ports"] == [8081]


def test_failed_handshake_unanswered_times_out(tmp_path):
    pkts = failures(4, 8, answer=None) + [(T0 + 10, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.9", dst="10.1.0.8") / UDP(sport=1, dport=2))]
    fired = types(run_packets(tmp_path, pkts)[0])["failed_handshake"]
    assert fired[0]["evidence"]["unanswered"] == 8


def test_failed_handshake_icmp_unreachable(tmp_path):
    pkts = []
    for i in range(8):
        t = T0 + i * 0.3
        probe = IP(src="10.1.0.66", dst="10.1.0.1") / TCP(sport=30000 + i, dport=443, flags="S")
        pkts += [(t, Ether(dst="02:00:00:00:00:02") / probe), (t + 0.001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.254", dst="10.1.0.66") / ICMP(type=3, code=13) / probe)]
    assert types(run_packets(tmp_path, pkts)[0])["failed_handshake"][0]["evidence"]["icmp_unreachable"] == 8


# ---- unusual protocol ---------------------------------------------------------------
@pytest.mark.parametrize("v", [4, 6])
def test_unusual_protocol_threshold(tmp_path, v):
    def gre(n):
        return [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / (IP(src=ADDRS[v][0], dst=host(v, 0), proto=47) if v == 4 else
                                           IPv6(src=ADDRS[v][0], dst=host(v, 0), nh=47)) / Raw(b"\x00" * 8)) for i in range(n)]
    assert "unusual_protocol" not in types(run_packets(tmp_path, gre(2))[0])
    fired = types(run_packets(tmp_path, gre(3))[0])["unusual_protocol"]
    assert fired[0]["evidence"]["protocol"] == 47 and fired[0]["evidence"]["packets"] == 3


@pytest.mark.parametrize("flags,name", [("FPU", "Xmas"), ("", "NULL"), ("SF", "SYN+FIN"), ("SR", "SYN+RST"), ("F", "FIN without ACK")])
def test_unusual_tcp_flags(tmp_path, flags, name):
    pkts = [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / TCP(sport=1, dport=80 + i, flags=flags)) for i in range(3)]
    fired = types(run_packets(tmp_path, pkts)[0])["unusual_protocol"]
    assert fired[0]["evidence"]["tcp_flags"].startswith(name)


def test_normal_tcp_flags_are_not_unusual(tmp_path):
    pkts = [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.2", dst="10.1.0.1") / TCP(sport=1, dport=80, flags=f))
            for i, f in enumerate(["S", "SA", "A", "PA", "FA", "R", "RA", "A"] * 3)]
    assert "unusual_protocol" not in types(run_packets(tmp_path, pkts)[0])


# ---- traffic burst ------------------------------------------------------------------
def icmp_flood(v, n, replies=True):
    pkts = []
    for i in range(n):
        t = T0 + i * 0.0005
        req = ICMP(type=8, seq=i) if v == 4 else ICMPv6EchoRequest(seq=i)
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / ip(v, ADDRS[v][0], host(v, 0)) / req))
        if replies:
            rep = ICMP(type=0, seq=i) if v == 4 else ICMPv6EchoRequest(seq=i)
            if v == 4:
                pkts.append((t + 0.0001, Ether(dst="02:00:00:00:00:02") / ip(v, host(v, 0), ADDRS[v][0]) / rep))
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_traffic_burst_icmp_threshold(tmp_path, v):
    assert "traffic_burst" not in types(run_packets(tmp_path, icmp_flood(v, 999))[0])
    fired = types(run_packets(tmp_path, icmp_flood(v, 1000))[0])["traffic_burst"]
    assert [a["src_ip"] for a in fired] == [ADDRS[v][0]] and fired[0]["evidence"]["packets"] == 1000


def test_traffic_burst_udp_one_way_vs_answered(tmp_path):
    one_way = [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / UDP(sport=5000, dport=9000)) for i in range(1000)]
    assert types(run_packets(tmp_path, one_way)[0])["traffic_burst"][0]["proto"] == "UDP"
    answered = []
    for i in range(1000):
        answered += [one_way[i], (one_way[i][0] + 0.0001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.66") / UDP(sport=9000, dport=5000))]
    assert "traffic_burst" not in types(run_packets(tmp_path, answered)[0])


def test_traffic_burst_ack_flood_vs_bulk_transfer(tmp_path):
    a, b = "10.1.0.66", "10.1.0.1"
    ack_flood = []
    for i in range(1000):
        t = T0 + i * 0.001
        ack_flood += [(t, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / TCP(sport=3000 + i, dport=80, flags="A")),
                      (t + 0.0001, Ether(dst="02:00:00:00:00:02") / IP(src=b, dst=a) / TCP(sport=80, dport=3000 + i, flags="R"))]
    fired = types(run_packets(tmp_path, ack_flood)[0])["traffic_burst"]
    assert fired[0]["src_ip"] == a and fired[0]["evidence"]["replies"] == 0
    bulk = [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / TCP(sport=3000, dport=80, flags="A") / Raw(b"x" * 1400)) for i in range(2000)]
    bulk += [(T0 + i * 0.02, Ether(dst="02:00:00:00:00:02") / IP(src=b, dst=a) / TCP(sport=80, dport=3000, flags="A")) for i in range(100)]
    assert "traffic_burst" not in types(run_packets(tmp_path, sorted(bulk, key=lambda p: p[0]))[0])


def test_traffic_burst_bounded(tmp_path):
    cap = 32
    noise = [(T0 + i * 0.0001, Ether(dst="02:00:00:00:00:02") / IP(src=many(4, i), dst="10.1.0.1") / UDP(sport=1, dport=2)) for i in range(10 * cap)]
    alerts, engine = run_packets(tmp_path, noise + icmp_flood(4, 1000, replies=False), {"detect.traffic_burst.max_pairs": cap})
    assert [a["src_ip"] for a in alerts if a["type"] == "traffic_burst"] == ["10.1.0.66"]
    st = engine.summary()["detector_state"]
    assert st["traffic_burst_keys"] <= cap and st["traffic_burst_evicted"] > 0


# ---- suspicious port ----------------------------------------------------------------
@pytest.mark.parametrize("v", [4, 6])
def test_suspicious_port(tmp_path, v):
    pkts = [syn(v, ADDRS[v][0], host(v, 0), 5000, 4444, T0), syn(v, ADDRS[v][0], host(v, 0), 5001, 4445, T0 + 1),
            (T0 + 2, Ether(dst="02:00:00:00:00:02") / ip(v, host(v, 0), ADDRS[v][0]) / TCP(sport=4444, dport=5000, flags="SA"))]
    fired = types(run_packets(tmp_path, pkts)[0])["suspicious_port"]
    assert [a["message"] for a in fired] == [f"Suspicious TCP connection from {ADDRS[v][0]} to port 4444"]


def test_suspicious_port_list_replaced(tmp_path):
    pkts = [syn(4, "10.1.0.5", "10.1.0.1", 5000, 4444, T0), syn(4, "10.1.0.5", "10.1.0.1", 5000, 8888, T0 + 1)]
    fired = types(run_packets(tmp_path, pkts, {"detect.suspicious_port.ports": [8888]})[0])["suspicious_port"]
    assert [a["dest_port"] for a in fired] == [8888]


# ---- dedup / cooldown ---------------------------------------------------------------
def test_cooldown_suppresses_and_reports_count(tmp_path):
    pkts = [syn(4, "10.1.0.5", "10.1.0.1", 5000 + i, 4444, T0 + i * 5) for i in range(8)]  # every 5 s for 35 s
    alerts, engine = run_packets(tmp_path, pkts, {"alerts.cooldown": 30.0})
    assert len(alerts) == 2 and alerts[1]["evidence"]["suppressed_since_last"] == 5
    summary = engine.summary()
    assert summary["suppressed"] == {"suspicious_port": 6}  # 5 before the second alert, 1 after
    assert summary["suppressed_pending"] == [{"type": "suspicious_port", "identifier": ["10.1.0.5", "10.1.0.1", "TCP", "4444"],
                                              "suppressed": 1}]


def test_disabled_detector_is_silent(tmp_path):
    assert run_packets(tmp_path, scan(4, 30), {"detect.port_scan.enabled": False})[0] == []


# ---- floods from many (forged) sources ------------------------------------------------
def spread(kind: str, n: int, reply: bool = False):
    pkts = []
    for i in range(n):
        t, src = T0 + i * 0.002, many(4, i)
        layer = {"icmp": ICMP(type=8), "udp": UDP(sport=1024 + i % 5000, dport=9000),
                 "tcp": TCP(sport=1024 + i % 5000, dport=80, flags="A")}[kind]
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / IP(src=src, dst="10.1.0.1") / layer))
        if reply:
            back = UDP(sport=9000, dport=1024 + i % 5000) if kind == "udp" else TCP(sport=80, dport=1024 + i % 5000, flags="A")
            pkts.append((t + 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst=src) / back))
    return pkts


@pytest.mark.parametrize("kind", ["icmp", "udp", "tcp"])
def test_random_source_flood_names_the_victim(tmp_path, kind):
    assert "traffic_burst" not in types(run_packets(tmp_path, spread(kind, 999))[0])
    fired = types(run_packets(tmp_path, spread(kind, 1000))[0])["traffic_burst"]
    assert [(a.get("src_ip"), a["dest_ip"]) for a in fired] == [(None, "10.1.0.1")]
    assert fired[0]["evidence"]["distinct_sources"] >= 900 and "from" in fired[0]["message"]


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_busy_server_answering_many_clients_is_not_a_flood(tmp_path, kind):
    assert "traffic_burst" not in types(run_packets(tmp_path, spread(kind, 1500, reply=True))[0])
