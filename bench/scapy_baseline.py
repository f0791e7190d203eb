"""The way a tutorial IDS is written: Scapy parses every packet, Python dicts count.

Same detections as wirewatch, per packet: blacklist, suspicious ports, port scan,
host sweep, SYN flood, failed handshakes (RST), unusual protocols/flags, traffic burst.
Used only by the benchmark, as the baseline wirewatch is compared with.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from collections import defaultdict, deque

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import PcapReader

SUSPICIOUS = {23, 1337, 2323, 4444, 5554, 6666, 6667, 6668, 6669, 12345, 27374, 31337, 54321}
WINDOW = 10.0


class ScapyIDS:
    def __init__(self, blocklist: list[str], all_detectors: bool):
        self.nets = [ipaddress.ip_network(n, strict=False) for n in blocklist]
        self.all = all_detectors
        self.ports = defaultdict(dict)  # (src, dst) -> {port: ts}
        self.hosts = defaultdict(dict)  # (src, dport) -> {dst: ts}
        self.syns = defaultdict(deque)  # dst -> syn times
        self.fails = defaultdict(deque)  # (src, dst) -> fail times
        self.rate = defaultdict(deque)  # (src, dst) -> times
        self.alerts = 0

    def alert(self, *_: object) -> None:
        self.alerts += 1

    def packet(self, pkt) -> None:
        ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
        if ip is None:
            return
        ts = float(pkt.time)
        src, dst = ip.src, ip.dst
        a_src, a_dst = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        for net in self.nets:
            if a_src in net or a_dst in net:
                self.alert("blacklist", src)
        tcp, udp = pkt.getlayer(TCP), pkt.getlayer(UDP)
        if tcp is not None and tcp.flags == "S" and tcp.dport in SUSPICIOUS:
            self.alert("suspicious_port", src)
        if udp is not None and udp.dport in SUSPICIOUS:
            self.alert("suspicious_port", src)
        if not self.all:
            return
        proto = ip.proto if isinstance(ip, IP) else ip.nh
        if proto not in (1, 2, 6, 17, 58):
            self.alert("unusual_protocol", src)
        if tcp is not None:
            flags = int(tcp.flags)
            if flags & 0x12 == 0x02 or flags & 0x14 == 0:
                d = self.ports[(src, dst)]
                d[tcp.dport] = ts
                for p in [p for p, t in d.items() if ts - t > WINDOW]:
                    del d[p]
                if len(d) >= 20:
                    self.alert("port_scan", src)
                h = self.hosts[(src, tcp.dport)]
                h[dst] = ts
                if len(h) >= 15:
                    self.alert("host_sweep", src)
                q = self.syns[dst]
                q.append(ts)
                while q and ts - q[0] > WINDOW:
                    q.popleft()
                if len(q) >= 400:
                    self.alert("syn_flood", dst)
            if flags & 0x04:
                f = self.fails[(dst, src)]
                f.append(ts)
                while f and ts - f[0] > 60:
                    f.popleft()
                if len(f) >= 8:
                    self.alert("failed_handshake", dst)
            if flags in (0, 0x29, 0x03, 0x06, 0x01, 0x3F):
                self.alert("unusual_protocol", src)
        if pkt.getlayer(ICMP) is not None or udp is not None or tcp is not None:
            r = self.rate[(src, dst)]
            r.append(ts)
            while r and ts - r[0] > WINDOW:
                r.popleft()
            if len(r) >= 1000:
                self.alert("traffic_burst", src)


def run(path: str, limit: int, blocklist: list[str], all_detectors: bool) -> tuple[int, float]:
    ids = ScapyIDS(blocklist, all_detectors)
    n = 0
    start = time.perf_counter()
    with PcapReader(path) as reader:
        for pkt in reader:
            ids.packet(pkt)
            n += 1
            if n >= limit:
                break
    return n, time.perf_counter() - start


if __name__ == "__main__":
    count, secs = run(sys.argv[1], int(sys.argv[2]), [], True)
    print(f"{count} packets in {secs:.2f} s = {count / secs:,.0f} packets/s")
