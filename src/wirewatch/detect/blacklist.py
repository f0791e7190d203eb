"""blacklist: any packet to or from an address in a blocklist."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..addr import addr_str
from ..blocklist import Blocklist, load
from ..decode import PacketBatch
from ..settings import setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature
from .classify.packets import proto_name
from .count.report import times

MAX_PEERS = 10


@dataclass(frozen=True)
class BlacklistConfig:
    enabled: bool = setting(True, "Alert on traffic to or from blocklisted addresses.")
    files: list[str] = setting([], "Blocklist files: one IP or CIDR per line; # and ; comments; "
                                   "Spamhaus DROP and FireHOL netset layouts work as-is.")


class Blacklist(Reconfigurable):
    name = "blacklist"

    def __init__(self, cfg: BlacklistConfig, blocklist: Blocklist | None = None):
        self.cfg = cfg
        self.blocklist = blocklist if blocklist is not None else load(list(cfg.files))
        self.matched_packets = 0

    def configure(self) -> None:
        """On reload, read the blocklist files again (a bad file keeps the old list)."""
        if getattr(self, "blocklist", None) is not None:
            self.blocklist = load(list(self.cfg.files))

    def observe(self, b: PacketBatch) -> list[Finding]:
        if not len(self.blocklist) or not len(b):
            return []
        hits: dict[tuple[str, tuple[str, str]], list[int]] = {}
        for side, hi, lo in (("src", b.src_hi, b.src_lo), ("dst", b.dst_hi, b.dst_lo)):
            v4 = (b.ipver == 4)
            idx = np.flatnonzero(v4)
            if idx.size:
                m = self.blocklist.match_v4(lo[idx] & np.uint64(0xFFFFFFFF))
                for entry_i in np.unique(m[m >= 0]):
                    rows = idx[m == entry_i]
                    self._collect(hits, side, self.blocklist.v4_source(int(entry_i)), rows, b)
            v6 = np.flatnonzero(b.ipver == 6)
            if v6.size and self.blocklist.v6_entry:
                values = (hi[v6].astype(object) << 64) | lo[v6].astype(object)
                for value in set(values.tolist()):
                    i = self.blocklist.match_v6(value)
                    if i >= 0:
                        self._collect(hits, side, self.blocklist.v6_source(i), v6[values == value], b)
        # the listed host as source first: "traffic from it" is the more useful alert
        return [self._finding(side, src, rows, b) for (side, src), rows in sorted(hits.items(), reverse=True)]

    @staticmethod
    def _collect(hits: dict, side: str, source: tuple[str, str], rows: np.ndarray, b: PacketBatch) -> None:
        hits.setdefault((side, source), []).extend(rows.tolist())

    def _finding(self, side: str, source: tuple[str, str], rows_list: list[int], b: PacketBatch) -> Finding:
        entry, list_name = source
        rows = np.array(sorted(rows_list))
        self.matched_packets += len(rows)
        r = rows[0]
        src, dst = addr_str(b.src_hi[r], b.src_lo[r]), addr_str(b.dst_hi[r], b.dst_lo[r])
        listed, peer_hi, peer_lo = (src, b.dst_hi, b.dst_lo) if side == "src" else (dst, b.src_hi, b.src_lo)
        peers = sorted({addr_str(h, l) for h, l in zip(peer_hi[rows][:1000], peer_lo[rows][:1000])})[:MAX_PEERS]
        direction = "from" if side == "src" else "to"
        return Finding(
            type=self.name, identifier=(listed, entry), ts=float(b.ts[rows[0]]),  # first contact
            message=f"Blacklisted address {listed} ({list_name}: {entry}): traffic {direction} it",
            src_ip=src, dest_ip=dst,
            src_port=int(b.sport[r]) if b.has_ports[r] else None,
            dest_port=int(b.dport[r]) if b.has_ports[r] else None, proto=proto_name(b.proto[r]),
            evidence={"list": list_name, "entry": entry, "address": listed, "direction": side,
                      "packets": int(len(rows)), "bytes": int(b.length[rows].sum()),
                      "peers": peers, **times(b.ts[rows[0]], b.ts[r])},
            target="src" if side == "dst" else "dest",  # the listed host is the attacker either way
        )

    def expire(self, now: float) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {"blacklist_entries": len(self.blocklist), "blacklist_packets": self.matched_packets}


SPEC = DetectorSpec(
    name=Blacklist.name, config=BlacklistConfig,
    signature=Signature(9000008, "WIREWATCH blacklisted address", "Potentially Bad Traffic", 1),
    build=lambda cfg, shared: Blacklist(cfg.detect.blacklist),
)
