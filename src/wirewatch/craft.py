"""Crafting packets with Scapy for tests and demos (never on the hot path).

`write_pcap` writes packets with explicit timestamps, so a crafted scenario replays
with the same packet times, and therefore the same alerts, every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import PcapWriter

BASE_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"


def write_pcap(path: str, packets: Iterable[tuple[float, Packet]], linktype: int | None = None,
               nano: bool = False, snaplen: int = 65535) -> str:
    """Write (timestamp, packet) pairs; returns the path."""
    with PcapWriter(path, linktype=linktype, nano=nano, snaplen=snaplen, sync=False) as w:
        for ts, pkt in packets:
            pkt.time = ts
            w.write(pkt)
    return path


def eth(layer: Packet) -> Packet:
    return Ether(src=MAC_A, dst=MAC_B) / layer


def tcp_handshake(t: float, client: str, server: str, sport: int, dport: int,
                  payload: bytes = b"") -> list[tuple[float, Packet]]:
    """A complete TCP connection: handshake, one request and reply, FIN close."""
    c2s = IP(src=client, dst=server)
    s2c = IP(src=server, dst=client)
    pkts = [
        (t, eth(c2s / TCP(sport=sport, dport=dport, flags="S", seq=1000))),
        (t + 0.001, eth(s2c / TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001))),
        (t + 0.002, eth(c2s / TCP(sport=sport, dport=dport, flags="A", seq=1001, ack=5001))),
    ]
    if payload:
        pkts.append((t + 0.003, eth(c2s / TCP(sport=sport, dport=dport, flags="PA", seq=1001, ack=5001) / payload)))
        pkts.append((t + 0.004, eth(s2c / TCP(sport=dport, dport=sport, flags="PA", seq=5001,
                                             ack=1001 + len(payload)) / b"HTTP/1.0 200 OK\r\n\r\n")))
    pkts.append((t + 0.005, eth(c2s / TCP(sport=sport, dport=dport, flags="FA", seq=1001 + len(payload), ack=5020))))
    pkts.append((t + 0.006, eth(s2c / TCP(sport=dport, dport=sport, flags="FA", seq=5020, ack=1002 + len(payload)))))
    return pkts


def syn_scan(t: float, scanner: str, target: str, ports: Sequence[int], gap: float = 0.001,
             open_ports: Sequence[int] = ()) -> list[tuple[float, Packet]]:
    """A SYN scan: each probe answered by SYN-ACK (open) or RST (closed)."""
    out = []
    for i, port in enumerate(ports):
        ts = t + i * gap
        out.append((ts, eth(IP(src=scanner, dst=target) / TCP(sport=40000, dport=port, flags="S"))))
        flags = "SA" if port in open_ports else "RA"
        out.append((ts + gap / 2, eth(IP(src=target, dst=scanner) / TCP(sport=port, dport=40000, flags=flags))))
    return out


def dns_query(t: float, client: str, server: str, sport: int) -> list[tuple[float, Packet]]:
    return [(t, eth(IP(src=client, dst=server) / UDP(sport=sport, dport=53) / (b"\x12\x34" + b"\x00" * 30))),
            (t + 0.002, eth(IP(src=server, dst=client) / UDP(sport=53, dport=sport) / (b"\x12\x34" + b"\x00" * 46)))]


def ping(t: float, src: str, dst: str, seq: int) -> list[tuple[float, Packet]]:
    return [(t, eth(IP(src=src, dst=dst) / ICMP(type=8, seq=seq))),
            (t + 0.001, eth(IP(src=dst, dst=src) / ICMP(type=0, seq=seq)))]


def write_syn_storm(path: str, n: int, dst: str, dport: int, t0: float = BASE_TS, duration: float = 10.0,
                    seed: int = 1) -> str:
    """`n` SYNs from `n` distinct random (spoofed) IPv4 sources to dst:dport, evenly spread over
    `duration` seconds, written with numpy (Scapy would take minutes for 200,000 packets).
    Sources are drawn from 11.0.0.0-126.255.255.255 without repeats."""
    import struct

    import numpy as np

    rng = np.random.default_rng(seed)
    src = (np.uint32(11 << 24) + rng.choice(115 << 24, n, replace=False).astype(np.uint32)).astype(">u4")
    frame = bytes(eth(IP(src="0.0.0.0", dst=dst) / TCP(sport=1024, dport=dport, flags="S")))
    rec = np.zeros((n, 16 + len(frame)), np.uint8)
    rec[:, 16:] = np.frombuffer(frame, np.uint8)
    ts = t0 + np.arange(n) * (duration / max(n, 1))
    sec = np.floor(ts).astype("<u4")
    head = np.stack([sec, np.round((ts - sec) * 1e6).clip(0, 999_999).astype("<u4"),
                     np.full(n, len(frame), "<u4"), np.full(n, len(frame), "<u4")], axis=1)
    rec[:, :16] = head.astype("<u4").view(np.uint8).reshape(n, 16)
    rec[:, 16 + 26:16 + 30] = src.view(np.uint8).reshape(n, 4)  # IPv4 source address
    rec[:, 16 + 34:16 + 36] = (1024 + np.arange(n) % 60000).astype(">u2").view(np.uint8).reshape(n, 2)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        fh.write(rec.tobytes())
    return path
