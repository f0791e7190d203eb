"""Half of traffic_burst (its spread-out side): one host flooded by many (often forged) sources.

Per-pair counting cannot see a flood whose every packet has a new random source. This
aggregate counts, per destination, the same kinds of traffic as traffic_burst (ICMP
requests, UDP, TCP without a connection, forged ICMP errors) and what the destination sends back, and fires
when the destination gets more than the threshold from at least `min_sources` distinct
sources while answering almost nothing. Only destinations busy enough in the current
slice to reach the threshold at that rate get state, so ordinary traffic costs one sort.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..addr import addr_str
from ..decode import PacketBatch
from .base import Finding
from .count import hll
from .count.kernels import group, hash_cols
from .count.report import COOLDOWN, NEAR, Gate, near, near_miss
from .count.window import WindowCounter

KINDS = ("icmp", "udp", "tcp", "icmp_error")  # the traffic kinds both halves of traffic_burst count
REPLY = {"udp": "udp_out", "tcp": "answer_out"}
METRICS = ("icmp", "udp", "tcp", "icmp_error", "udp_out", "answer_out")
QUOTE_NOTE = ("ICMP errors quoting a packet the destination never sent (the quoted source is another "
              "address) or no IP header at all: they answer nothing (BlackNurse)")
LABELS = {"host_hi": np.uint64, "host_lo": np.uint64}
UNITS = {"icmp": "ICMP requests", "udp": "UDP packets", "tcp": "TCP packets without a connection",
         "icmp_error": "forged ICMP errors"}  # near misses


# eq=False: numpy columns have no value ==, and each method dataclass makes is compiled at import (start-up)
@dataclass(eq=False)
class Pairs:
    """traffic_burst's rows (ICMP requests, UDP, TCP without SYN, ICMP errors...) grouped by (source,
    destination) once per batch: `group(pair keys, inverse=True)` of `rows`. The
    many-sources view works per destination, and every row of a pair has that pair's
    destination (and source), so it hashes and looks up one key per pair, not per row."""

    rows: PacketBatch
    grouped: tuple[np.ndarray, ...]
    span: float  # packet time the whole batch spans

    @property
    def first(self) -> np.ndarray:
        """Each pair's first row."""
        order, starts = self.grouped[0], self.grouped[1]
        return order[starts]

    @property
    def pair_of(self) -> np.ndarray:
        """Each row's pair."""
        return self.grouped[3]


class VictimFlood:
    def __init__(self, window: float, threshold: int, min_reply_ratio: float, min_sources: int, cap: int,
                 names: dict[str, str], gate: Gate = COOLDOWN):
        self.window, self.threshold = window, threshold
        self.min_reply_ratio, self.min_sources = min_reply_ratio, min_sources
        self.names = names
        # a destination is worth its largest kind of inbound traffic (against one threshold), not its ICMP alone
        self.counter = WindowCounter(window, cap, METRICS, LABELS, buckets=5, extra=hll.COLUMNS, gate=gate,
                                     rank=lambda totals: np.max([totals[k] for k in KINDS], axis=0))
        self.sources = hll.WindowedHLL(window)

    def observe(self, pairs: Pairs, kinds: dict[str, np.ndarray], answer: np.ndarray,
                explained: Callable[[str, str], bool], messages: np.ndarray) -> list[Finding]:
        """`kinds`, `answer` and `messages`: masks over `pairs.rows`; `explained(victim, kind)`: a
        per-pair alert already covers this victim and kind; `messages`: UDP rows that are an
        application's messages (traffic_burst.messages), not counted as flood traffic."""
        p, pair_of = pairs.rows, pairs.pair_of
        udp_in = kinds["udp"] & ~messages
        inbound = udp_in.copy()
        for kind in KINDS:
            if kind != "udp":
                inbound |= kinds[kind]
        n_inbound = int(np.count_nonzero(inbound))
        if n_inbound < 8:
            return []
        first = pairs.first
        pdst = hash_cols(p.dst_hi[first], p.dst_lo[first])  # each pair's destination, as a key
        psrc = hash_cols(p.src_hi[first], p.src_lo[first])  # and its source
        per_pair = np.bincount(pair_of[inbound], minlength=len(first))
        dorder, dstarts, _, dst_of = group(pdst, inverse=True)  # pairs by destination
        per_dst = np.bincount(dst_of, weights=per_pair, minlength=len(dstarts))
        busy = per_dst >= max(8.0, self.threshold * pairs.span / self.window / 2)
        if self.counter.table.size:  # destinations already tracked keep being counted
            busy |= self.counter.table.find(pdst[dorder[dstarts]]) >= 0
        busy &= per_dst > 0  # destinations that received inbound rows in this batch
        if not busy.any():
            return []
        rows = np.flatnonzero(inbound & busy[dst_of][pair_of])
        rpair = pair_of[rows]
        keys = pdst[rpair]
        ts = p.ts[rows]
        values = {k: (udp_in if k == "udp" else kinds[k])[rows] for k in KINDS if k != "icmp_error" or kinds[k].any()}
        touched = self.counter.add(keys, ts, values, {"host_hi": p.dst_hi[rows], "host_lo": p.dst_lo[rows]})
        self.sources.add(self.counter.table.cols, self.counter.table.find(pdst)[rpair], psrc[rpair], ts)
        self._count_replies(p, pair_of, psrc, kinds["udp"], answer)
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

    def _count_replies(self, p: PacketBatch, pair_of: np.ndarray, psrc: np.ndarray, udp: np.ndarray,
                       answer: np.ndarray) -> None:
        """What tracked destinations send back (UDP, acknowledging TCP): rows whose source is one."""
        known = self.counter.table.find(psrc) >= 0  # per pair: its source is a tracked destination
        rows = np.flatnonzero((udp | answer) & known[pair_of])
        if rows.size:
            self.counter.add(psrc[pair_of[rows]], p.ts[rows], {"udp_out": udp[rows], "answer_out": answer[rows]})

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
            dest_ip=victim, proto={"udp": "UDP", "tcp": "TCP"}.get(kind, "ICMP"),
            evidence={"kind": self.names[kind], "packets": packets, "window_s": self.window, "threshold": self.threshold,
                      "distinct_sources": sources, "distinct_sources_note": "HyperLogLog estimate",
                      "min_sources": self.min_sources, "replies": replies, "min_reply_ratio": self.min_reply_ratio,
                      "peak_pps": round(int(c.peak(s, now, kind)[0]) / c.width, 1),
                      **({"quote_note": QUOTE_NOTE} if kind == "icmp_error" else {}), **c.seen(slot)},
        )

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """Victims that got at least half the threshold of one kind of flood traffic in the
        window from at least min_sources sources while answering almost nothing (as for an
        alert): keyed by the victim, with no single source."""
        c = self.counter
        occ = c.occupied()
        if not occ.size:
            return []
        sums = c.all_totals(occ, now)
        out = []
        for kind in KINDS:
            sent = sums[kind]
            keep = (sent >= NEAR * self.threshold) & (sent < self.threshold)
            if kind in REPLY:
                keep &= sums[REPLY[kind]] < self.min_reply_ratio * np.maximum(sent, 1)
            if keep.any():
                keep[np.flatnonzero(keep)] = self.sources.estimate(c.table.cols, occ[keep], now) >= self.min_sources
            slots, figure = near(occ[keep], sent[keep], self.threshold)
            for s, n in zip(slots.tolist(), figure.tolist()):
                victim = addr_str(int(c.label(s, "host_hi")), int(c.label(s, "host_lo")))
                sources = int(round(self.sources.estimate(c.table.cols, np.array([s]), now)[0]))
                out.append(near_miss("traffic_burst", None, n, self.threshold,
                                     f"{UNITS[kind]} from {sources} sources", self.window, dest_ip=victim))
        return out

    def expire(self, now: float) -> None:
        self.counter.expire(now)

    def stats(self) -> dict[str, int]:
        return self.counter.stats("traffic_burst_victims")
