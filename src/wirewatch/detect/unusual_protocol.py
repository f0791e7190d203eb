"""unusual_protocol: IP protocols outside the allowed set, and impossible TCP flag sets.

NULL, FIN without ACK, Xmas (FIN+PSH+URG), SYN+FIN, SYN+RST and all-flags packets are
never sent by a normal TCP stack: they are scan probes or evasion attempts.

An IP protocol scan (nmap -sO) sends one packet of each protocol number: no single
protocol repeats, so it is counted apart, as distinct unusual protocols per source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..decode import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, PacketBatch
from ..lut import member_table
from ..settings import Frozen, cap, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature, Tunable
from .classify.packets import ADDR_LABELS, addr_labels, proto_name, tcp_rows
from .count.kernels import hash_cols
from .count.report import COOLDOWN, Gate, best_near_misses, near, near_miss
from .count.window import DistinctCounter, WindowCounter

FLAG_KINDS = {1: "NULL (no flags)", 2: "FIN without ACK", 3: "Xmas (FIN+PSH+URG)", 4: "SYN+FIN",
              5: "SYN+RST", 6: "all flags set"}
PROTO_KIND = 1000  # kind = PROTO_KIND + protocol number for unusual protocols
PROTO_SCAN = 2000  # the kind of an IP protocol scan (many distinct unusual protocols)
SAMPLE = 20


@dataclass(frozen=True, eq=False, repr=False)
class UnusualProtocolConfig(Frozen):
    enabled: bool = setting(True, "Detect unusual IP protocols and impossible TCP flag combinations.")
    allowed_protocols: list[int] = setting([1, 2, 6, 17, 58], "IP protocol numbers that are normal here "
                                                              "(default ICMP, IGMP, TCP, UDP, ICMPv6).", 0, 255)
    link_local_protocols: list[int] = setting([88, 89, 103, 112], "IP protocols that are normal on the link: to a "
                                                  "link-local multicast group (224.0.0.0/24, ff02::/16) or from an IPv6 "
                                                  "link-local address (fe80::/10): routers and "
                                                  "redundancy pairs announcing themselves (default EIGRP, OSPF, PIM, "
                                                  "VRRP/CARP).", 0, 255)
    check_tcp_flags: bool = setting(True, "Also report scan-style TCP flag combinations.")
    threshold: int = setting(3, "Packets of one kind from one source within the window.", 1)
    scan_threshold: int = setting(8, "Distinct protocols outside allowed_protocols from one source within the "
                                     "window that make an IP protocol scan (nmap -sO; 0 = off).", 0)
    window: float = seconds(0.0, "Window in seconds; 0 = general.time_window.", 0)
    max_sources: int = cap(16_384, "Cap on (source, kind) pairs tracked.")


def flag_kind(flags: np.ndarray) -> np.ndarray:
    """Classify TCP flag bytes: 0 = ordinary, else a FLAG_KINDS code (first match wins)."""
    f = flags & 0x3F
    syn, fin, rst, ack = (f & TCP_SYN) != 0, (f & TCP_FIN) != 0, (f & TCP_RST) != 0, (f & TCP_ACK) != 0
    xmas = (f & (TCP_FIN | TCP_PSH | TCP_URG)) == (TCP_FIN | TCP_PSH | TCP_URG)
    conds = [f == 0x3F, f == 0, syn & rst, syn & fin, xmas & ~ack, fin & ~ack & ~syn & ~rst]
    return np.select(conds, [6, 1, 5, 4, 3, 2], 0).astype(np.int64)


V4_LINK_LOCAL_GROUP = np.uint64((0xFFFF << 24) | 0xE00000)  # 224.0.0.0/24 in the low 64 bits, shifted right by 8
V6_LINK_LOCAL_GROUP = np.uint64(0xFF02)  # ff02::/16 in the high 64 bits, shifted right by 48
V6_LINK_LOCAL_UNICAST = np.uint64(0xFE80 >> 6)  # fe80::/10 in the high 64 bits, shifted right by 54


def on_link(b: PacketBatch) -> np.ndarray:
    """Packets that cannot have left their link: to a link-local multicast group (224.0.0.0/24,
    ff02::/16), or from an IPv6 link-local address (fe80::/10, which routers never forward).

    Routing and redundancy protocols talk this way: OSPF and PIM hellos, VRRP adverts every few
    seconds to their groups, and OSPFv3 neighbours exchanging databases between link-local
    addresses, on every network that runs them."""
    v4_group = (b.dst_hi == 0) & ((b.dst_lo >> np.uint64(8)) == V4_LINK_LOCAL_GROUP)
    v6_group = (b.dst_hi >> np.uint64(48)) == V6_LINK_LOCAL_GROUP
    return v4_group | v6_group | ((b.src_hi >> np.uint64(54)) == V6_LINK_LOCAL_UNICAST)


class UnusualProtocol(Reconfigurable):
    name = "unusual_protocol"

    def __init__(self, cfg: UnusualProtocolConfig, window: float, gate: Gate = COOLDOWN):
        self.cfg = cfg
        self.window = cfg.window or window
        self.configure()
        self.counter = WindowCounter(self.window, cfg.max_sources, ("packets",), {**ADDR_LABELS, "kind": np.int64}, gate=gate)
        self.protocols = DistinctCounter(self.window, cfg.max_sources, cfg.max_sources * 4, ADDR_LABELS,
                                         {"protocol": np.int64}, gate=gate)

    def configure(self) -> None:
        self.allowed = member_table(self.cfg.allowed_protocols)
        self.link_local = member_table(self.cfg.link_local_protocols)

    def observe(self, b: PacketBatch) -> list[Finding]:
        odd = (b.ipver != 0) & ~self.allowed[b.proto]
        odd &= ~(self.link_local[b.proto] & on_link(b))
        kind = np.where(odd, PROTO_KIND + b.proto.astype(np.int64), 0)
        if self.cfg.check_tcp_flags:
            tcp = tcp_rows(b) & b.flags_ok
            kind = np.where(tcp & (kind == 0), flag_kind(b.tcp_flags) * tcp, kind)
        rows = np.flatnonzero(kind)
        if not rows.size:
            return []
        p, k = b.select(rows), kind[rows]
        keys = hash_cols(p.src_hi, p.src_lo, k)
        touched = self.counter.add(keys, p.ts, {"packets": np.ones(len(p), np.int64)}, {**addr_labels(p), "kind": k})
        now = float(p.ts.max())
        hot = touched[self.counter.totals(touched, now, "packets") >= self.cfg.threshold]
        scans = self._protocol_scan(p, k, now)
        hot = hot[~self._scanning(hot)]
        out = [self._finding(int(s), now) for s in self.counter.due(hot, now, self.window)]
        return out + scans

    def _scanning(self, slots: np.ndarray) -> np.ndarray:
        """Which of these (source, kind) slots are an unusual protocol of a source that is an IP
        protocol scanner (scan_threshold distinct unusual protocols within the window): nmap -sO
        retransmits every unanswered protocol's probe, up to ten times, and those repeats are the
        scan's, reported by its alert, not one alert per protocol number."""
        c, pc = self.counter, self.protocols
        out = np.zeros(len(slots), bool)
        if not self.cfg.scan_threshold or not slots.size:
            return out
        groups = pc.groups.find(hash_cols(c.label(slots, "src_hi"), c.label(slots, "src_lo")))
        known = groups >= 0
        out[known] = pc.distinct(groups[known]) >= self.cfg.scan_threshold
        return out & (c.label(slots, "kind") >= PROTO_KIND)

    def _protocol_scan(self, p: PacketBatch, kind: np.ndarray, now: float) -> list[Finding]:
        odd = np.flatnonzero(kind >= PROTO_KIND)
        if not self.cfg.scan_threshold or not odd.size:
            return []
        q = p.select(odd)
        proto = q.proto.astype(np.int64)
        touched = self.protocols.observe(hash_cols(q.src_hi, q.src_lo), proto, q.ts, addr_labels(q), {"protocol": proto})
        c = self.protocols
        return [self._scan_finding(int(s)) for s in c.due(c.over(touched, self.cfg.scan_threshold), now, self.window)]

    def _scan_finding(self, slot: int) -> Finding:
        c = self.protocols
        items = c.members(slot)
        protos = sorted(int(x) for x in c.item(items, "protocol"))
        src, dst = c.src(slot), c.dst(slot)
        n = int(c.distinct(slot))
        return Finding(
            type=self.name, identifier=(src, PROTO_SCAN), ts=c.last_seen(slot),
            message=f"IP protocol scan from {src}: {n} unusual protocols", src_ip=src, dest_ip=dst,
            evidence={"protocol_scan": True, "distinct_protocols": n, "window_s": self.window,
                      "threshold": self.cfg.scan_threshold, "packets": c.item_hits(items),
                      "sample_protocols": protos[:SAMPLE], "last_destination": dst, **c.seen(slot)},
        )

    def _finding(self, slot: int, now: float) -> Finding:
        c = self.counter
        kind = int(c.label(slot, "kind"))
        count = int(c.totals(np.array([slot]), now, "packets")[0])
        src, dst = c.src(slot), c.dst(slot)
        if kind >= PROTO_KIND:
            num = kind - PROTO_KIND
            what = f"IP protocol {num} ({proto_name(num)})" if proto_name(num) != str(num) else f"IP protocol {num}"
            detail = {"protocol": num, "protocol_name": proto_name(num)}
            proto = proto_name(num)
        else:
            what = f"TCP flags {FLAG_KINDS[kind]}"
            detail = {"tcp_flags": FLAG_KINDS[kind]}
            proto = "TCP"
        return Finding(
            type=self.name, identifier=(src, kind), ts=c.last_seen(slot),
            message=f"Unusual traffic from {src}: {what}", src_ip=src, dest_ip=dst, proto=proto,
            evidence={**detail, "packets": count, "window_s": self.window, "threshold": self.cfg.threshold,
                      "last_destination": dst, **c.seen(slot)},
        )

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """Sources at >= half the threshold of packets of one unusual kind, or of distinct
        unusual protocols (the protocol scan)."""
        c, pc = self.counter, self.protocols
        occ = c.occupied()
        slots, figure = near(occ, c.totals(occ, now, "packets"), self.cfg.threshold)
        out = [near_miss(self.name, c.src(s), n, self.cfg.threshold, f"packets of {self._kind_name(int(c.label(s, 'kind')))}",
                         self.window, dest_ip=c.dst(s)) for s, n in zip(slots.tolist(), figure.tolist())]
        if self.cfg.scan_threshold:
            occ = pc.occupied()
            slots, figure = near(occ, pc.distinct(occ), self.cfg.scan_threshold)
            out += [near_miss(self.name, pc.src(s), n, self.cfg.scan_threshold, "unusual protocols", self.window,
                              dest_ip=pc.dst(s)) for s, n in zip(slots.tolist(), figure.tolist())]
        return best_near_misses(out)

    @staticmethod
    def _kind_name(kind: int) -> str:
        return f"IP protocol {kind - PROTO_KIND}" if kind >= PROTO_KIND else f"TCP flags {FLAG_KINDS[kind]}"

    def expire(self, now: float) -> None:
        self.counter.expire(now)
        self.protocols.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.counter.stats("unusual_protocol"), **self.protocols.stats("unusual_protocol_scan")}


SPEC = DetectorSpec(
    name=UnusualProtocol.name, config=UnusualProtocolConfig,
    signature=Signature(9000006, "WIREWATCH unusual protocol or TCP flags", "Potentially Bad Traffic", 2),
    build=lambda cfg, shared: UnusualProtocol(cfg.detect.unusual_protocol, cfg.general.time_window, shared.gate),
    tunables=(Tunable("scan_threshold", "distinct_protocols", (2, 16, 1)),
              Tunable("threshold", "packets", (1, 10, 1))),
    figure="packets", storm_label="Unusual protocol alerts",
)
