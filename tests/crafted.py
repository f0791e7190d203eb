"""Packet crafting shared by the detector tests (tests/detect/): addresses, SYNs, a port scan,
grouping alerts by type, and many low sources for tune's cap on alert keys. Every packet carries an explicit timestamp (packet time)."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from wirewatch.craft import BASE_TS, eth, syn_scan, write_pcap

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


def scan(v: int, n: int, gap: float = 0.01, src: str | None = None, t0: float = T0):
    src = src or ADDRS[v][0]
    return [syn(v, src, host(v, 0), 40000, 1000 + p, t0 + p * gap) for p in range(n)]


def many_sources_capture(path: Path) -> str:
    """Scapy-crafted: 80 sources each SYN-scanning 7 ports of its own host (port_scan's figure 7:
    above the grid's lowest value 5, below the default 20), 3 scanners of 30 ports among them,
    and 40 sources each knocking once on watched port 4444 (suspicious_port, no threshold)."""
    packets = []
    for i in range(80):
        t = BASE_TS + i * 0.05
        packets += syn_scan(t, f"10.20.{i // 200}.{i % 200 + 1}", f"10.30.{i // 200}.{i % 200 + 1}", range(2001, 2008))
        if i in (20, 50, 79):
            packets += syn_scan(t + 0.01, f"10.66.0.{i}", f"10.31.0.{i}", range(3001, 3031))
    for i in range(40):
        packets.append((BASE_TS + 5 + i * 0.01, eth(IP(src=f"10.50.0.{i + 1}", dst="10.40.0.1") /
                                                    TCP(sport=30000 + i, dport=4444, flags="S"))))
    packets.sort(key=lambda p: p[0])
    return write_pcap(str(path), packets)
