"""Packet crafting shared by the detector tests (tests/detect/): addresses, SYNs, a port scan,
and grouping alerts by type. Every packet carries an explicit timestamp (packet time)."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

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


def scan(v: int, n: int, gap: float = 0.01, src: str | None = None, t0: float = T0):
    src = src or ADDRS[v][0]
    return [syn(v, src, host(v, 0), 40000, 1000 + p, t0 + p * gap) for p in range(n)]
