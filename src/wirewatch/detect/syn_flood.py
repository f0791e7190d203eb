"""syn_flood: a destination receives SYNs at a high rate while few handshakes complete.

Keyed by the victim, so it works when every SYN has a random (spoofed) source: by the
victim host (a flood spread over ports) and by the victim host and port (a flood of one
port while other ports serve their clients).

Busy or hostile: a busy web server also takes hundreds of SYNs a second, but nearly all
of them complete. What counts is the SYNs that did *not* complete (at least `threshold`
within the window) and the share that did (at most `max_completion`): legitimate load on
the same server lowers neither the flood's count of incomplete SYNs nor, up to as much
legitimate load as flood, its share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..addr import addr_str
from ..decode import PacketBatch
from ..schema import format_ts
from ..settings import Frozen, cap, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Rise, Signature, Tunable
from .classify.handshakes import COMPLETED, HandshakeTracker
from .classify.packets import ADDR_LABELS, addr_labels, dst_key, syn_only
from .count import hll
from .count.doorkeeper import Doorkeeper
from .count.kernels import group, hash_cols
from .count.report import COOLDOWN, NEAR, NEAR_MISSES, Gate, near_miss, times
from .count.table import Schema
from .count.window import WindowCounter
from .count.window_util import sorted_unique

TOP = 10
TARGET_DOOR_BITS = 16  # destinations seen once remembered (32 bytes each) until seen again
BUCKETS = 10  # ring cells per window
REPORT_GROWTH = 1.1  # reported again within its interval when its distinct sources grew by 10 % since
                     # its last report (the alert manager makes the largest repeat the alert's update)


@dataclass(frozen=True, eq=False, repr=False)
class SynFloodConfig(Frozen):
    enabled: bool = setting(True, "Detect SYN floods against one destination.")
    threshold: int = setting(400, "SYNs to one destination (host, or host and port) within the window that did "
                                  "not complete a handshake.", 1)
    max_completion: float = setting(0.5, "Fire only if at most this share of its SYNs completed a handshake.", 0, 1)
    window: float = seconds(0.0, "Window in seconds; 0 = general.time_window.", 0)
    max_targets: int = cap(8_192, "Cap on destinations tracked (~1.5 KB each; a destination takes one at its second SYN).")
    max_sources: int = cap(262_144, "Cap on (destination, source) pairs tracked.")


class SynFlood(Reconfigurable):
    name = "syn_flood"

    def __init__(self, cfg: SynFloodConfig, window: float, tracker: HandshakeTracker, gate: Gate = COOLDOWN):
        self.cfg = cfg
        self.window = cfg.window or window
        self.tracker = tracker
        labels = {**ADDR_LABELS, "port": np.int64}  # port -1: the key of the whole host
        self.rate = WindowCounter(self.window, cfg.max_targets, ("syn", "completed"), labels,
                                  buckets=BUCKETS,
                                  extra={**hll.COLUMNS, **SynTimes.columns(BUCKETS),
                                         "reported_sources": (np.int64, 1)}, gate=gate,
                                  rank=lambda t: t["syn"])  # a victim's SYNs, completed or not: both make its ratio
        self.syn_times = SynTimes(self.rate)  # first and last SYN counted (not completions)
        self.door = Doorkeeper(self.window, TARGET_DOOR_BITS, {"syn": np.int64, "src": np.uint64})
        self._victims: tuple[np.ndarray, np.ndarray] | None = None  # sources sorted by victim (_by_source)
        self.distinct = hll.WindowedHLL(self.window)  # distinct sources per victim
        # exact per-source counts only for sources seen at least twice (the top sources)
        self.sources = WindowCounter(self.window, cfg.max_sources, ("syns",),
                                     {"src_hi": np.uint64, "src_lo": np.uint64, "victim": np.uint64},
                                     buckets=2, doorkeeper_bits=16)

    def observe(self, b: PacketBatch) -> list[Finding]:
        self._victims = None  # the sources table changes below: its index by victim is built anew when asked
        events = self.tracker.observe(b)
        rows = np.flatnonzero(syn_only(b))
        touched = np.zeros(0, np.int64)
        if rows.size:
            p = b.select(rows)
            host = dst_key(p)
            ones = np.ones(len(p), np.int64)
            src = hash_cols(p.src_hi, p.src_lo)
            for keys, port in ((host, np.full(len(p), -1, np.int64)), (_port_key(host, p.dport), p.dport.astype(np.int64))):
                # a destination gets a row (with its distinct-source registers) at its second SYN,
                # with both SYNs: a scan's one SYN per port or host leaves no state
                keys, ts, first, labels = self.door.admit(lambda k: self.rate.table.find(k) >= 0, keys, p.ts,
                                                          {"syn": ones, "src": src}, {**addr_labels(p), "port": port})
                if not len(keys):
                    continue
                slots = self.rate.add(keys, ts, {"syn": first["syn"]}, labels)
                touched = np.concatenate([touched, slots])
                rows_slots = self._count_sources(keys, first["src"], ts)
                self.syn_times.add(rows_slots, ts)
            self.sources.add(hash_cols(host, src), p.ts, {"syns": ones},
                             {"src_hi": p.src_hi, "src_lo": p.src_lo, "victim": host})
        self._count_completed(events)
        if not touched.size:
            return []
        touched = sorted_unique(touched)
        now = float(b.ts[rows].max())
        syns = self.rate.totals(touched, now, "syn")
        done_n = np.minimum(self.rate.totals(touched, now, "completed"), syns)
        hot = touched[(syns - done_n >= self.cfg.threshold) & (done_n <= self.cfg.max_completion * np.maximum(syns, 1))]
        # one finding per victim: the port key when it is hot (more specific), else the host's
        r = self.rate
        hot = hot[np.lexsort((-r.label(hot, "port"), r.label(hot, "dst_lo"), r.label(hot, "dst_hi")))]
        victim = r.dst_keys(hot)
        hot = hot[np.r_[True, victim[1:] != victim[:-1]]] if hot.size else hot
        hot = np.array([s for s in hot.tolist() if r.label(s, "port") >= 0 or not self._a_scan(s, now)], np.int64)
        ready = r.due(hot, now, self.window)
        rest = sorted_unique(hot)  # np.setdiff1d(hot, ready), without its numpy.ma import
        rest = rest[~np.isin(rest, ready)]
        return [self._finding(int(s), now) for s in np.r_[ready, self._grown(rest, now)]]

    def _grown(self, slots: np.ndarray, now: float) -> np.ndarray:
        """Reported keys whose distinct sources grew by REPORT_GROWTH since their last report."""
        told = self.rate.label(slots, "reported_sources")
        slots, told = slots[told > 0], told[told > 0]
        if not slots.size:
            return slots
        return slots[self.distinct.estimate(self.rate.table.cols, slots, now) >= REPORT_GROWTH * told]

    def _host_slot(self, slot: int) -> int:
        return int(self.rate.table.find(self.rate.dst_keys(np.array([slot])))[0])

    def _by_source(self, slot: int, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-source slots (of self.sources) of this slot's host, and their SYNs in the window.
        The sources table is read once per batch, however many victims ask (a scan check per
        hot host key, a report or growth re-report per victim): sorted by victim, then
        searched, instead of one scan of the whole table (max_sources) per victim."""
        if self._victims is None:
            occ = self.sources.occupied()
            victim = self.sources.label(occ, "victim")
            order = np.argsort(victim, kind="stable")
            self._victims = (occ[order], victim[order])
        occ, victim = self._victims
        key = self.rate.dst_keys(np.array([slot]))[0]  # top sources are per host
        mine = occ[np.searchsorted(victim, key, side="left"):np.searchsorted(victim, key, side="right")]
        return mine, self.sources.totals(mine, now, "syns")

    def _busiest_port(self, slot: int, now: float) -> dict[str, int] | None:
        """The port of this slot's host that got the most SYNs in the window."""
        r = self.rate
        occ = r.occupied()
        mine = occ[(r.label(occ, "port") >= 0) & (r.label(occ, "dst_hi") == r.label(slot, "dst_hi"))
                   & (r.label(occ, "dst_lo") == r.label(slot, "dst_lo"))]
        if not mine.size:
            return None
        syns = r.totals(mine, now, "syn")
        i = int(np.argmax(syns))
        return {"port": int(r.label(mine[i], "port")), "syns": int(syns[i])}

    def _a_scan(self, slot: int, now: float) -> bool:
        """A host-wide flood that one source sent most of, no port of it hot on its own: one
        source spreading SYNs over many ports is a port scan (port_scan's), not a flood."""
        _, sent = self._by_source(slot, now)
        syns = int(self.rate.totals(np.array([slot]), now, "syn")[0])
        return bool(sent.size) and 2 * int(sent.max()) >= syns

    def _count_sources(self, keys: np.ndarray, src: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Distinct sources per key; returns each row's slot (-1: not tracked)."""
        slots = self.rate.table.find(keys)
        ok = slots >= 0
        self.distinct.add(self.rate.table.cols, slots[ok], src[ok], ts[ok])
        return slots

    def _count_completed(self, events) -> None:
        """Completed handshakes count for victims we already track (host and host+port)."""
        done = np.flatnonzero(events.outcome == COMPLETED)
        if not done.size:
            return
        host = hash_cols(events.dst_hi[done], events.dst_lo[done])
        for keys in (host, _port_key(host, events.dport[done])):
            known = self.rate.table.find(keys) >= 0
            if known.any():
                self.rate.add(keys[known], events.ts[done][known], {"completed": np.ones(int(known.sum()), np.int64)})

    def _finding(self, slot: int, now: float) -> Finding:
        r = self.rate
        s = np.array([slot])
        syns = int(r.totals(s, now, "syn")[0])
        completed = int(r.totals(s, now, "completed")[0])
        peak = int(r.peak(s, now, "syn")[0]) / r.width
        victim = r.dst(slot)
        port = int(r.label(slot, "port"))
        first_syn, last_syn = self.syn_times.span(slot, now)
        # an estimate, never above the SYNs it counts
        distinct = min(syns, int(round(self.distinct.estimate(r.table.cols, s, now)[0])))
        r.set_label(slot, "reported_sources", max(distinct, 1))
        mine, sent = self._by_source(slot, now)
        host = self._host_slot(slot)
        host_syns = int(r.totals(np.array([host]), now, "syn")[0]) if host >= 0 else syns
        first, most = self.sources.top(mine, sent, TOP)  # most SYNs first; ties by slot, for determinism
        top: list[dict[str, Any]] = [{"src_ip": addr_str(hi, lo), "syns": int(n)} for hi, lo, n in
                                     zip(self.sources.label(first, "src_hi"), self.sources.label(first, "src_lo"),
                                         most.tolist()) if n > 0]
        listed = sum(x["syns"] for x in top)
        # the host's entry counts from when it was made: within the window only when it was evicted
        # (more than max_targets busier keys) and made again, while the sources' own table kept counting
        since = {}
        if listed > host_syns or syns > host_syns:
            since = {"host_syns_since": format_ts(r.first_seen(host if host >= 0 else slot))}
        return Finding(
            type=self.name, identifier=(victim,), ts=last_syn,
            message=f"Possible SYN flood against {victim}{'' if port < 0 else f' port {port}'} "
                    f"({distinct} source{'' if distinct == 1 else 's'})",
            src_ip=top[0]["src_ip"] if distinct == 1 and top else None, dest_ip=victim,
            dest_port=None if port < 0 else port, proto="TCP",
            evidence={"syns": syns, "window_s": self.window, "threshold": self.cfg.threshold,
                      "scope": "host" if port < 0 else "host and port",
                      "completed_handshakes": completed, "incomplete_syns": syns - min(completed, syns),
                      "max_completion": self.cfg.max_completion, "completion_ratio": round(completed / max(syns, 1), 4),
                      "peak_syn_per_s": round(peak, 1), "distinct_sources": distinct,
                      "distinct_sources_note": "HyperLogLog estimate (about 4.6 % error) of the sources since "
                                               "distinct_sources_since (the window's last two half-windows)",
                      "distinct_sources_since": format_ts(self.distinct.span_start(now)),
                      "top_sources": top, "top_sources_note": "sources that sent at least two SYNs, "
                                                              "counted over the whole host",
                      "host_syns": host_syns, **since,
                      "other_sources_syns": None if since else host_syns - listed,
                      "other_sources_note": "SYNs to the host from the sources not listed (fewer each, or one)",
                      "busiest_port": self._busiest_port(slot, now),
                      **times(first_syn, last_syn)},
        )

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """Victims (host, or host and port) at >= half the threshold of incomplete SYNs in the
        window, with no more completed than an alert allows: keyed by the victim (no single
        source: the sources may be forged). One entry per victim host, its key of the highest
        fraction (the port's on a tie); a host-wide count that one source sent most of over
        many ports is a port scan's, as for an alert."""
        r = self.rate
        occ = r.occupied()
        if not occ.size:
            return []
        self._victims = None  # asked between batches: read the sources as they are now
        syns = r.totals(occ, now, "syn")
        done_n = np.minimum(r.totals(occ, now, "completed"), syns)
        keep = done_n <= self.cfg.max_completion * np.maximum(syns, 1)
        slots, figure = occ[keep], (syns - done_n)[keep]
        ok = (figure >= NEAR * self.cfg.threshold) & (figure < self.cfg.threshold)
        slots, figure = slots[ok], figure[ok]
        order = np.lexsort((-r.label(slots, "port"), -figure))  # highest first, a port key before its host's
        out: list[dict[str, Any]] = []
        victims: set[int] = set()
        for s, n in zip(slots[order].tolist(), figure[order].tolist()):
            victim = int(r.dst_keys(np.array([s]))[0])
            port = int(r.label(s, "port"))
            if victim in victims or (port < 0 and self._a_scan(s, now)):
                continue
            victims.add(victim)
            out.append(near_miss(self.name, None, n, self.cfg.threshold, "incomplete SYNs", self.window,
                                 dest_ip=r.dst(s), dest_port=None if port < 0 else port))
            if len(out) == NEAR_MISSES:
                break
        return out

    def expire(self, now: float) -> None:
        self.rate.expire(now)
        self.sources.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.rate.stats("syn_flood_targets"), "syn_flood_targets_seen_once": self.door.held,
                **self.sources.stats("syn_flood_sources"),
                **self.tracker.stats()}


class SynTimes:
    """The packet times of the first and the last SYN a key's window counts (a key's
    table entry lives longer, and completed handshakes also touch it): per ring cell of
    the WindowCounter, the earliest SYN of the cell's epoch, and the latest SYN."""

    @staticmethod
    def columns(buckets: int) -> Schema:
        return {"syn_epoch": (np.int64, buckets), "syn_first": (np.float64, buckets), "syn_last": (np.float64, 1)}

    def __init__(self, counter: WindowCounter):
        self.counter = counter

    def add(self, slots: np.ndarray, ts: np.ndarray) -> None:
        ok = slots >= 0
        slots, ts = slots[ok], ts[ok]
        if not slots.size:
            return
        c, nb = self.counter.table.cols, self.counter.nb
        ep = np.floor(ts / self.counter.width).astype(np.int64) + 1  # + 1: 0 marks an empty cell
        cell = slots * nb + (ep - 1) % nb
        # per cell (one hash grouping, no sort): its newest epoch, that epoch's earliest SYN, the latest SYN
        order, starts, ends = group(cell.astype(np.uint64))
        cells, cep, cts = cell[order[starts]], ep[order], ts[order]
        eps = np.maximum.reduceat(cep, starts)
        earliest = np.minimum.reduceat(np.where(cep == np.repeat(eps, ends - starts), cts, np.inf), starts)
        held_ep, held = c["syn_epoch"].reshape(-1), c["syn_first"].reshape(-1)
        same = held_ep[cells] == eps
        newer = held_ep[cells] < eps
        held[cells[same]] = np.minimum(held[cells[same]], earliest[same])
        held[cells[newer]], held_ep[cells[newer]] = earliest[newer], eps[newer]
        np.maximum.at(c["syn_last"], cells // nb, np.maximum.reduceat(cts, starts))

    def span(self, slot: int, now: float) -> tuple[float, float]:
        """(first, last) SYN time counted in `slot`'s window at `now`."""
        c = self.counter.table.cols
        cur = int(np.floor(now / self.counter.width)) + 1
        ep = c["syn_epoch"][slot]
        live = (ep > cur - self.counter.nb) & (ep <= cur)
        first = float(c["syn_first"][slot][live].min()) if live.any() else float(c["syn_last"][slot])
        return first, float(c["syn_last"][slot])


def _port_key(host: np.ndarray, port: np.ndarray) -> np.ndarray:
    return hash_cols(host, port.astype(np.int64) + 1)


SPEC = DetectorSpec(
    name=SynFlood.name, config=SynFloodConfig,
    signature=Signature(9000004, "WIREWATCH SYN flood", "Attempted Denial of Service", 2),
    conversation=True,
    build=lambda cfg, shared: SynFlood(cfg.detect.syn_flood, cfg.general.time_window, shared.handshakes(),
                                        shared.gate),
    tunables=(Tunable("threshold", "incomplete_syns", (100, 1000, 50),
                      "one finding per victim and slice: where its host-and-port key is above the lowered "
                      "threshold, that key's figure is recorded, not the host's (which can be larger)"),),
    figure="distinct_sources",
    rises=(Rise("distinct_sources", 100, 1, "spoofed or distributed"),),
)
