"""distributed_scan: several sources together probe many ports of one host.

Counts distinct ports per *victim* across all sources (a count of sources alone would
flag any popular server), and fires only when no member would be a port scanner on its
own: that case is `port_scan`'s.

Busy or hostile: a port that a source held a conversation on (classify/conversations.py:
data over the connection, a UDP answer from the port) was used, not probed. Such
(source, port) pairs count neither towards the victim's ports nor make the source a member,
so the clients of a busy server are not co-scanners of whoever scans it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..addr import addr_str
from ..decode import PacketBatch
from ..settings import Frozen, cap, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature, Tunable
from .classify.conversations import conversations
from .classify.packets import ADDR_LABELS, addr_labels, dst_key, probe_port, probes
from .count.kernels import hash_cols
from .count.report import COOLDOWN, Gate, near, near_miss
from .count.window import DistinctCounter

SAMPLE = 20


@dataclass(frozen=True, eq=False, repr=False)
class DistributedScanConfig(Frozen):
    enabled: bool = setting(True, "Detect several sources together scanning one host.")
    threshold: int = setting(30, "Distinct ports of one host probed by all sources together.", 2)
    min_sources: int = setting(2, "Fewest sources that make it distributed.", 2)
    member_threshold: int = setting(0, "A member probing this many ports alone is a plain port scan "
                                       "(0 = detect.port_scan.threshold).", 0)
    window: float = seconds(30.0, "Window in seconds.", 1)
    max_targets: int = cap(8_192, "Cap on victims tracked.")
    max_probes: int = cap(131_072, "Cap on (victim, port), (victim, source) and (source, victim, port) entries.")


CHECK_INTERVAL = 2.0  # seconds of packet time between membership checks of one victim


class DistributedScan(Reconfigurable):
    name = "distributed_scan"

    def __init__(self, cfg: DistributedScanConfig, scan_threshold: int, gate: Gate = COOLDOWN):
        self.cfg = cfg
        self.scan_threshold = scan_threshold
        self.configure()
        w = cfg.window
        talked = {"talked": np.uint8}
        # told: the ports the victim's last report said (see due_or_grown)
        self.ports = DistinctCounter(w, cfg.max_targets, cfg.max_probes, {**ADDR_LABELS, "told": np.int64},
                                     {"port": np.int64, **talked}, gate=gate)
        self.members = DistinctCounter(w, cfg.max_probes, cfg.max_probes,
                                       {"src_hi": np.uint64, "src_lo": np.uint64, "victim": np.uint64},
                                       talked, doorkeeper_bits=16)

    def configure(self) -> None:
        root = getattr(self, "root", None)  # on reload, the new port_scan.threshold
        if root is not None:
            self.scan_threshold = root.detect.port_scan.threshold
        self.member_threshold = self.cfg.member_threshold or self.scan_threshold

    def observe(self, b: PacketBatch) -> list[Finding]:
        p = probes(b)
        touched = np.zeros(0, np.int64)
        if len(p):
            port = probe_port(p)
            victim = dst_key(p)
            # an item's `talked` starts at 0 (a new row's columns are zero): not passed, not parked
            touched = self.ports.observe(victim, port, p.ts, addr_labels(p), {"port": port})
            self.members.observe(hash_cols(victim, p.src_hi, p.src_lo), port, p.ts,
                                 {"src_hi": p.src_hi, "src_lo": p.src_lo, "victim": victim})
        self._mark_conversations(b)
        if not touched.size:
            return []
        c = self.ports
        hot = c.over(touched, self.cfg.threshold)
        probed = c.distinct(hot) - c.marked(hot, "talked")
        hot, probed = hot[probed >= self.cfg.threshold], probed[probed >= self.cfg.threshold]
        now = float(p.ts.max())
        # every CHECK_INTERVAL, and at once when the victim's probed ports grew by 10 % since the last
        # report: the last sources of a scan that ends between two checks are still told
        due = c.due_or_grown(hot, probed, now, min(CHECK_INTERVAL, self.cfg.window), "told")
        found = (self._finding(int(s)) for s in due)
        return [f for f in found if f is not None]

    def _mark_conversations(self, b: PacketBatch) -> None:
        c = conversations(b)
        if not len(c.service):
            return
        victim = hash_cols(c.target_hi, c.target_lo)
        self.ports.mark(victim, c.service, "talked")
        self.members.mark(hash_cols(victim, c.prober_hi, c.prober_lo), c.service, "talked")

    def _finding(self, slot: int) -> Finding | None:
        c, m = self.ports, self.members
        mine = m.keys_where("victim", c.key(slot))
        mine = mine[m.distinct(mine) > 0]
        shares = m.distinct(mine) - m.marked(mine, "talked")
        mine, shares = mine[shares > 0], shares[shares > 0]
        if len(mine) < self.cfg.min_sources or shares.max() >= self.member_threshold:
            return None
        first, shares = m.top(mine, shares, SAMPLE)
        members: list[dict[str, Any]] = [{"src_ip": addr_str(hi, lo), "distinct_ports": int(n)}
                                         for hi, lo, n in zip(m.label(first, "src_hi"), m.label(first, "src_lo"), shares)]
        victim = c.dst(slot)
        items = c.members(slot)
        items = items[c.item(items, "talked") == 0]
        ports = sorted(int(x % 65536) for x in c.item(items, "port"))
        return Finding(
            type=self.name, identifier=(victim,), ts=c.last_seen(slot),
            message=f"Possible distributed port scan of {victim} from {len(mine)} sources",
            dest_ip=victim, src_ip=members[0]["src_ip"],
            evidence={"distinct_ports": len(ports), "window_s": self.cfg.window,
                      "threshold": self.cfg.threshold, "sources": int(len(mine)),
                      "member_threshold": self.member_threshold, "members": members,
                      **c.seen(slot), "sample_ports": ports[:SAMPLE]},
        )

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """Victims whose ports probed by all sources together (not counting ports that were
        used, not probed) reached at least half the threshold, probed by at least min_sources
        sources none of which is a port scanner alone (as for an alert): keyed by the victim,
        with no single source."""
        c, m = self.ports, self.members
        occ = c.occupied()
        if not occ.size:
            return []
        probed = c.distinct(occ) - c.marked(occ, "talked")
        slots, figure = near(occ, probed, self.cfg.threshold)
        out = []
        for s, n in zip(slots.tolist(), figure.tolist()):
            mine = m.keys_where("victim", c.key(s))
            shares = m.distinct(mine) - m.marked(mine, "talked")
            shares = shares[shares > 0]
            if len(shares) < self.cfg.min_sources or shares.max() >= self.member_threshold:
                continue
            out.append(near_miss(self.name, None, n, self.cfg.threshold, f"ports, probed by {len(shares)} sources",
                                 self.cfg.window, dest_ip=c.dst(s)))
        return out

    def expire(self, now: float) -> None:
        self.ports.expire(now)
        self.members.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.ports.stats("distributed_scan_ports"), **self.members.stats("distributed_scan_members")}


SPEC = DetectorSpec(
    name=DistributedScan.name, config=DistributedScanConfig,
    signature=Signature(9000003, "WIREWATCH distributed port scan", "Attempted Information Leak", 2),
    build=lambda cfg, shared: DistributedScan(cfg.detect.distributed_scan, cfg.detect.port_scan.threshold,
                                               shared.gate),
    tunables=(Tunable("threshold", "distinct_ports", (10, 60, 5),
                      "membership (no member a port scanner alone) is checked at every slice in tune, "
                      "every 2 s in read: a borderline victim may differ"),),
    figure="distinct_ports",
)
