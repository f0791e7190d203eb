"""Half of traffic_burst (its spread-out side): one host flooded by many (often forged) sources.

Per-pair counting cannot see a flood whose every packet has a new random source. This
aggregate counts, per destination, the same kinds of traffic as traffic_burst (ICMP
requests, UDP, TCP without a connection) and what the destination sends back, and fires
when the destination gets more than the threshold from at least `min_sources` distinct
sources while answering almost nothing. Only destinations busy enough in the current
slice to reach the threshold at that rate get state, so ordinary traffic costs one sort.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..addr import addr_str
from ..decode import PacketBatch
from .base import Finding
from .count import hll
from .count.kernels import group, hash_cols
from .count.report import COOLDOWN, Gate
from .count.window import WindowCounter

KINDS = ("icmp", "udp", "tcp")  # the traffic kinds both halves of traffic_burst count
REPLY = {"udp": "udp_out", "tcp": "answer_out"}
METRICS = ("icmp", "udp", "tcp", "udp_out", "answer_out")
LABELS = {"host_hi": np.uint64, "host_lo": np.uint64}


class VictimFlood:
    def __init__(self, window: float, threshold: int, min_reply_ratio: float, min_sources: int, cap: int,
                 names: dict[str, str], gate: Gate = COOLDOWN):
        self.window, self.threshold = window, threshold
        self.min_reply_ratio, self.min_sources = min_reply_ratio, min_sources
        self.names = names
        self.counter = WindowCounter(window, cap, METRICS, LABELS, buckets=5, extra=hll.COLUMNS, gate=gate)
        self.sources = hll.WindowedHLL(window)

    def observe(self, b: PacketBatch, kinds: dict[str, np.ndarray], answer: np.ndarray,
                explained: Callable[[str, str], bool]) -> list[Finding]:
        """`explained(victim, kind)`: a per-pair alert already covers this victim and kind."""
        inbound = np.flatnonzero(kinds["icmp"] | kinds["udp"] | kinds["tcp"])
        if inbound.size < 8:
            return []
        dkeys = hash_cols(b.dst_hi[inbound], b.dst_lo[inbound])
        order, starts, ends, inverse = group(dkeys, inverse=True)
        span = float(b.ts.max() - b.ts.min())
        busy = ends - starts >= max(8.0, self.threshold * span / self.window / 2)
        if self.counter.table.size:  # destinations already tracked keep being counted
            busy |= self.counter.table.find(dkeys[order[starts]]) >= 0
        if not busy.any():
            return []
        mine = busy[inverse]
        rows, keys = inbound[mine], dkeys[mine]
        ts = b.ts[rows]
        values = {k: kinds[k][rows] for k in KINDS}
        touched = self.counter.add(keys, ts, values, {"host_hi": b.dst_hi[rows], "host_lo": b.dst_lo[rows]})
        self.sources.add(self.counter.table.cols, self.counter.table.find(keys), hash_cols(b.src_hi[rows], b.src_lo[rows]), ts)
        self._count_replies(b, kinds["udp"], answer)
        now = float(ts.max())
        out = []
        sums = self.counter.all_totals(touched, now)
        for kind in KINDS:
            cand = touched[sums[kind] >= self.threshold]
            if not cand.size:
                continue
            if kind in REPLY:
                sent = self.counter.totals(cand, now, REPLY[kind])
                cand = cand[sent < self.min_reply_ratio * self.counter.totals(cand, now, kind)]
            spread = self.sources.estimate(self.counter.table.cols, cand, now) >= self.min_sources
            for slot in self.counter.due(cand[spread], now, self.window):
                finding = self._finding(int(slot), now, kind)
                if not explained(finding.dest_ip or "", kind):
                    out.append(finding)
        return out

    def _count_replies(self, b: PacketBatch, udp: np.ndarray, answer: np.ndarray) -> None:
        rows = np.flatnonzero(udp | answer)
        if not rows.size:
            return
        keys = hash_cols(b.src_hi[rows], b.src_lo[rows])
        known = self.counter.table.find(keys) >= 0
        if known.any():
            r = rows[known]
            self.counter.add(keys[known], b.ts[r], {"udp_out": udp[r], "answer_out": answer[r]})

    def _finding(self, slot: int, now: float, kind: str) -> Finding:
        c = self.counter
        s = np.array([slot])
        victim = addr_str(int(c.label(slot, "host_hi")), int(c.label(slot, "host_lo")))
        packets = int(c.totals(s, now, kind)[0])
        sources = int(round(self.sources.estimate(c.table.cols, s, now)[0]))
        replies = int(c.totals(s, now, REPLY[kind])[0]) if kind in REPLY else None
        return Finding(
            type="traffic_burst", identifier=(victim, kind, "many sources"), ts=c.last_seen(slot),
            message=f"Traffic flood against {victim} from {sources} sources: {self.names[kind]}",
            dest_ip=victim, proto={"icmp": "ICMP", "udp": "UDP", "tcp": "TCP"}[kind],
            evidence={"kind": self.names[kind], "packets": packets, "window_s": self.window, "threshold": self.threshold,
                      "distinct_sources": sources, "distinct_sources_note": "HyperLogLog estimate",
                      "min_sources": self.min_sources, "replies": replies, "min_reply_ratio": self.min_reply_ratio,
                      "peak_pps": round(int(c.peak(s, now, kind)[0]) / c.width, 1), **c.seen(slot)},
        )

    def expire(self, now: float) -> None:
        self.counter.expire(now)

    def stats(self) -> dict[str, int]:
        return self.counter.stats("traffic_burst_victims")
