"""Captures that raise a known number of alerts, for the store tests.

Each packet is a SYN from its own source to its own destination on watched port 4444:
one suspicious_port alert per packet, and no destination sees more than one source,
so nothing folds into an aggregate or a scan.
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from wirewatch.craft import BASE_TS, eth, write_pcap


def addr(base: str, i: int) -> str:
    return f"{base}.{(i >> 8) & 255}.{i & 255}"


def storm_capture(path: str, n: int, t0: float = BASE_TS, gap: float = 0.01, pad: int = 0) -> str:
    """n SYNs to port 4444, `gap` seconds of packet time apart (pad bytes of payload each)."""
    payload = Raw(b"\0" * pad) if pad else b""
    pkts = ((t0 + i * gap, eth(IP(src=addr("10.61", i), dst=addr("10.62", i)) / TCP(sport=40000, dport=4444,
                                                                                    flags="S") / payload))
            for i in range(n))
    return write_pcap(path, pkts)
