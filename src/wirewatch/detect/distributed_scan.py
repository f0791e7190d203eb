"""distributed_scan: several sources together probe many ports of one host.

Counts distinct ports per *victim* across all sources (a count of sources alone would
flag any popular server), and fires only when no member would be a port scanner on its
own: that case is `port_scan`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..addr import addr_str
from ..decode import PacketBatch
from ..settings import setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature
from .classify.packets import ADDR_LABELS, addr_labels, dst_key, port_probe
from .count.kernels import hash_cols
from .count.report import dst_of, due, times
from .count.window import DistinctCounter

SAMPLE = 20


@dataclass(frozen=True)
class DistributedScanConfig:
    enabled: bool = setting(True, "Detect several sources together scanning one host.")
    threshold: int = setting(30, "Distinct ports of one host probed by all sources together.", 2)
    min_sources: int = setting(2, "Fewest sources that make it distributed.", 2)
    member_threshold: int = setting(0, "A member probing this many ports alone is a plain port scan "
                                       "(0 = detect.port_scan.threshold).", 0)
    window: float = setting(30.0, "Window in seconds.", 1)
    max_targets: int = setting(8_192, "Cap on victims tracked.", 16)
    max_probes: int = setting(131_072, "Cap on (victim, port), (victim, source) and (source, victim, port) entries.", 16)


CHECK_INTERVAL = 2.0  # seconds of packet time between membership checks of one victim


class DistributedScan(Reconfigurable):
    name = "distributed_scan"

    def __init__(self, cfg: DistributedScanConfig, scan_threshold: int):
        self.cfg = cfg
        self.member_threshold = cfg.member_threshold or scan_threshold
        w = cfg.window
        self.ports = DistinctCounter(w, cfg.max_targets, cfg.max_probes, ADDR_LABELS, {"port": np.int64})
        self.members = DistinctCounter(w, cfg.max_probes, cfg.max_probes,
                                       {"src_hi": np.uint64, "src_lo": np.uint64, "victim": np.uint64},
                                       doorkeeper_bits=16)

    def observe(self, b: PacketBatch) -> list[Finding]:
        rows = np.flatnonzero(port_probe(b))
        if not rows.size:
            return []
        p = b.select(rows)
        port = p.proto.astype(np.int64) * 65536 + p.dport
        victim = dst_key(p)
        touched = self.ports.observe(victim, port, p.ts, addr_labels(p), {"port": port})
        self.members.observe(hash_cols(victim, p.src_hi, p.src_lo), port, p.ts,
                             {"src_hi": p.src_hi, "src_lo": p.src_lo, "victim": victim})
        g = self.ports.groups
        hot = touched[g.cols["distinct"][touched] >= self.cfg.threshold]
        now = float(p.ts.max())
        found = (self._finding(int(s)) for s in due(g, hot, now, min(CHECK_INTERVAL, self.cfg.window)))
        return [f for f in found if f is not None]

    def _finding(self, slot: int) -> Finding | None:
        g, m = self.ports.groups, self.members.groups
        occ = m.occupied()
        mine = occ[(m.cols["victim"][occ] == g.keys[slot]) & (m.cols["distinct"][occ] > 0)]
        shares = m.cols["distinct"][mine]
        if len(mine) < self.cfg.min_sources or shares.max() >= self.member_threshold:
            return None
        order = np.lexsort((mine, -shares))
        members = [{"src_ip": addr_str(m.cols["src_hi"][s], m.cols["src_lo"][s]),
                    "distinct_ports": int(m.cols["distinct"][s])} for s in mine[order][:SAMPLE]]
        victim = dst_of(g, slot)
        items = self.ports.items_of(int(g.keys[slot]))
        ports = sorted(int(x % 65536) for x in self.ports.items.cols["port"][items])
        return Finding(
            type=self.name, identifier=(victim,), ts=float(g.last_seen[slot]),
            message=f"Possible distributed port scan of {victim} from {len(mine)} sources",
            dest_ip=victim, src_ip=members[0]["src_ip"],
            evidence={"distinct_ports": int(g.cols["distinct"][slot]), "window_s": self.cfg.window,
                      "threshold": self.cfg.threshold, "sources": int(len(mine)),
                      "member_threshold": self.member_threshold, "members": members,
                      **times(g.cols["first_seen"][slot], g.last_seen[slot]), "sample_ports": ports[:SAMPLE]},
        )

    def expire(self, now: float) -> None:
        self.ports.expire(now)
        self.members.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.ports.stats("distributed_scan_ports"), **self.members.stats("distributed_scan_members")}


SPEC = DetectorSpec(
    name=DistributedScan.name, config=DistributedScanConfig,
    signature=Signature(9000003, "WIREWATCH distributed port scan", "Attempted Information Leak", 2),
    build=lambda cfg, shared: DistributedScan(cfg.detect.distributed_scan, cfg.detect.port_scan.threshold),
)
