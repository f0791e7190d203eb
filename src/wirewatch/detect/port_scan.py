"""port_scan: one source probes many distinct ports of one host.

Two windows: the short one (threshold distinct ports within `window` seconds) catches
ordinary scans; the long one (a lower rate: `slow_threshold` ports within `slow_window`)
catches slow scans such as nmap -T1. Probes are counted per initiator (replies never
count), so a server answering many client ports is not a scanner. SCTP ports (nmap -sY)
count as UDP's do. ACK probes (nmap -sA's ACKs,
nmap -sM's FIN+ACKs) count when the target answers them with a bare RST
(packets.answered_ack_probes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..decode import PROTO_TCP, PROTO_UDP, TCP_SYN, PacketBatch
from ..settings import Frozen, cap, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Rise, Signature, Tunable, one_per_source
from .classify.conversations import conversations
from .classify.packets import ADDR_LABELS, addr_labels, pair_key, probe_port, probes, proto_name
from .classify.replies import CLOSED, OPEN, REPLIED, UNFILTERED, UNREACHABLE, replies
from .count.kernels import hash_cols
from .count.report import COOLDOWN, Gate, best_near_misses, near, near_miss
from .count.window import DistinctCounter, WindowCounter

SAMPLE = 20
ANSWERS = {"open": OPEN, "closed": CLOSED, "unfiltered": UNFILTERED, "unreachable": UNREACHABLE}
DOOR_BITS = 16  # (source, host) pairs must probe twice before they get state: see doorkeeper.py


@dataclass(frozen=True, eq=False, repr=False)
class PortScanConfig(Frozen):
    enabled: bool = setting(True, "Detect one source probing many ports of one host.")
    threshold: int = setting(20, "Distinct destination ports within the window that make a scan (--scan-threshold).", 2)
    window: float = seconds(0.0, "Window in seconds; 0 = general.time_window (--time-window).", 0)
    slow_threshold: int = setting(0, "Distinct ports within slow_window that make a slow scan "
                                     "(0 = 1.25 x threshold, i.e. 25 by default).", 0)
    slow_window: float = seconds(120.0, "Long window (seconds) for slow scans.", 1)
    max_sources: int = cap(32_768, "Cap on (source, host) pairs tracked.")
    max_probes: int = cap(131_072, "Cap on (source, host, port) probes tracked.")


class PortScan(Reconfigurable):
    name = "port_scan"

    def __init__(self, cfg: PortScanConfig, window: float, gate: Gate = COOLDOWN):
        self.cfg = cfg
        self.window = cfg.window or window
        self.configure()
        # stealth: first probed by TCP without SYN (FIN, NULL, Xmas); talked: the port was then really used
        ports = {"port": np.int64, "stealth": np.uint8, "talked": np.uint8}
        # one table, two windows: distinct_inner counts the short window, distinct the long one
        # told, told_inner: the distinct ports each window's last report said (see due_or_grown)
        self.probes = DistinctCounter(max(cfg.slow_window, self.window), cfg.max_sources, cfg.max_probes,
                                      {**ADDR_LABELS, "told": np.int64, "told_inner": np.int64}, ports, DOOR_BITS,
                                      inner_window=self.window, gate=gate)
        self.answers = WindowCounter(cfg.slow_window, cfg.max_sources, tuple(ANSWERS))

    def configure(self) -> None:
        self.slow_threshold = self.cfg.slow_threshold or max(2, round(self.cfg.threshold * 1.25))

    def observe(self, b: PacketBatch) -> list[Finding]:
        p = probes(b)
        if not len(p):
            self._count_answers(b)
            return []
        keys = pair_key(p)
        item = probe_port(p)
        labels = addr_labels(p)
        stealth = ((p.proto == PROTO_TCP) & p.flags_ok & ((p.tcp_flags & TCP_SYN) == 0)).astype(np.uint8)
        touched = self.probes.observe(keys, item, p.ts, labels,
                                      {"port": item, "stealth": stealth})  # talked: 0 in a new row
        self._mark_conversations(b)
        self._count_answers(b)
        now = float(p.ts.max())
        short = self._due(self._scanned(touched, self.cfg.threshold, True), now, self.window, True)
        out = {int(s): self._finding(int(s), self.cfg.threshold, self.window, "short window", inner=True) for s in short}
        for slot in self._due(self._scanned(touched, self.slow_threshold, False), now, self.cfg.slow_window, False):
            if int(slot) not in out:
                out[int(slot)] = self._finding(int(slot), self.slow_threshold, self.cfg.slow_window, "long window (slow scan)")
        return _one_per_source(self._fold_decoys(out, touched, now))

    def _due(self, hot: np.ndarray, now: float, interval: float, inner: bool) -> np.ndarray:
        """Scanning pairs to report: once per interval, and again whenever the scan reached 10 %
        more ports than its last report said, so the alert's update and tally count the whole
        scan (masscan's 2,000 ports over 4 s, not the 377 of its first second)."""
        c = self.probes
        return c.due_or_grown(hot, c.distinct(hot, inner), now, interval, "told_inner" if inner else "told", inner)

    def _fold_decoys(self, found: dict[int, Finding], touched: np.ndarray, now: float) -> list[Finding]:
        """Decoys (nmap -D): sources whose every probe went unanswered while the same host
        answered another source's probes of the same ports (at least half of them) in the same
        slice of time. The host is alive and answering, so its answers to those sources were
        never sent or never arrived: the addresses were forged next to the real scanner's (on a
        LAN the host cannot even resolve them). They are no scanners of their own; the answered
        source's finding names them (`decoys`). `found`: the findings by their pair's slot."""
        quiet = [slot for slot, f in found.items() if not _answered(f.evidence["answers"])]
        if not quiet:
            return list(found.values())
        c = self.probes
        dsts = c.dst_keys(touched)
        answered = self._answers(touched, now) > 0
        decoys: dict[int, list[str]] = {}  # the answered pair's slot -> its decoys
        for slot in quiet:
            mine = set(c.item(c.members(slot), "port").tolist())
            same_host = touched[answered & (dsts == c.dst_keys(np.array([slot]))[0])]
            for other in same_host.tolist():
                if 2 * len(mine & set(c.item(c.members(int(other)), "port").tolist())) >= len(mine):
                    decoys.setdefault(int(other), []).append(c.src(slot))
                    break
        gone = {d for ds in decoys.values() for d in ds}
        out = [f for f in found.values() if f.src_ip not in gone]
        for slot, f in found.items():
            if slot in decoys and f.src_ip not in gone:
                f.evidence["decoys"] = sorted(decoys[slot])
        return out

    def _answers(self, slots: np.ndarray, now: float) -> np.ndarray:
        """Answers of any kind each (prober, target) pair drew within the slow window."""
        found = self.answers.table.find(self.probes.table.keys[slots])
        out = np.zeros(len(slots), np.int64)
        ok = found >= 0
        if ok.any():
            out[ok] = sum(v for v in self.answers.all_totals(found[ok], now).values())
        return out

    def _scanned(self, slots: np.ndarray, threshold: int, inner: bool) -> np.ndarray:
        """Pairs with at least `threshold` ports probed and never used: TCP ports where a
        conversation followed (data, classify/conversations.py) are a client's, not a scan's.
        A UDP answer is not one here: it is what a UDP scan's probe draws from an open port."""
        hot = self.probes.over(slots, threshold, inner)
        return hot[self.probes.distinct(hot, inner) - self.probes.marked(hot, "talked", inner) >= threshold]

    def _mark_conversations(self, b: PacketBatch) -> None:
        c = conversations(b)
        tcp = np.flatnonzero(c.service // 65536 == PROTO_TCP)
        if tcp.size:
            self.probes.mark(hash_cols(c.prober_hi[tcp], c.prober_lo[tcp], c.target_hi[tcp], c.target_lo[tcp]),
                             c.service[tcp], "talked")

    def _count_answers(self, b: PacketBatch) -> None:
        """Answers from probed hosts, per (prober, target): see replies.py."""
        r = replies(b)
        kinds = r.kind.copy()
        udp = np.flatnonzero((r.kind == REPLIED) & (r.service // 65536 == PROTO_UDP))
        if udp.size:  # a UDP answer from a port the prober probed: that port is open (a UDP scan's "open")
            pair = hash_cols(r.prober_hi[udp], r.prober_lo[udp], r.target_hi[udp], r.target_lo[udp])
            kinds[udp[self.probes.find_items(pair, r.service[udp]) >= 0]] = OPEN
        scan = kinds != REPLIED
        keys = hash_cols(r.prober_hi[scan], r.prober_lo[scan], r.target_hi[scan], r.target_lo[scan])  # = pair_key of the probe
        known = self.probes.groups.find(keys) >= 0  # only pairs already seen probing
        if known.any():
            kind = kinds[scan][known]
            self.answers.add(keys[known], b.ts[r.rows[scan][known]], {m: kind == k for m, k in ANSWERS.items()})

    def _finding(self, slot: int, threshold: int, window: float, mode: str, inner: bool = False) -> Finding:
        c = self.probes
        key = c.key(slot)
        items = c.members(slot, inner)
        ports = np.sort(c.item(items, "port"))
        hits = c.item_hits(items)
        src, dst = c.src(slot), c.dst(slot)
        protos = sorted({proto_name(p // 65536) for p in ports[:1000].tolist()})
        ans = self.answers.table.find(np.array([key], np.uint64))
        answered = {}
        if ans[0] >= 0:
            answered = {m: int(v[0]) for m, v in self.answers.all_totals(ans, c.last_seen(slot)).items()}
        answered["unanswered_or_filtered"] = max(0, hits - sum(answered.values()))
        if answered.get("closed", 0) and answered["unanswered_or_filtered"] and 2 * int(c.item(items, "stealth").sum()) > len(items):
            # a FIN/NULL/Xmas scan: a closed port answers RST, an open one nothing (RFC 793); on a host
            # that answered some probes closed, the silent ones are open|filtered, as nmap says
            answered["open_or_filtered"] = answered["unanswered_or_filtered"]
        return Finding(
            type=self.name, identifier=(src,), ts=c.last_seen(slot),
            message=f"Possible port scan detected from {src}",
            src_ip=src, dest_ip=dst, proto="/".join(protos) or None,
            evidence={"distinct_ports": int(c.distinct(slot, inner)), "window_s": window,
                      "threshold": threshold, "mode": mode, "target": dst, "probes": hits,
                      "conversations": int((c.item(items, "talked") != 0).sum()), **c.seen(slot),
                      "sample_ports": [int(p % 65536) for p in ports[:SAMPLE]], "answers": answered},
        )

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """Sources at >= half a threshold, in either window (counts as of the last expiry step)."""
        c = self.probes
        occ = c.occupied()
        occ = occ[(c.distinct(occ, True) < self.cfg.threshold) & (c.distinct(occ) < self.slow_threshold)]  # not alerted
        out = []
        for inner, limit, window in ((True, self.cfg.threshold, self.window), (False, self.slow_threshold, self.cfg.slow_window)):
            slots, figure = near(occ, c.distinct(occ, inner), limit)
            out += [near_miss(self.name, c.src(s), n, limit, "ports", window, dest_ip=c.dst(s))
                    for s, n in zip(slots.tolist(), figure.tolist())]
        return best_near_misses(out)

    def expire(self, now: float) -> None:
        self.probes.expire(now)
        self.answers.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.probes.stats("port_scan"), **self.answers.stats("port_scan_answers")}


def _one_per_source(found: list[Finding]) -> list[Finding]:
    """A scanner of several hosts at once (nmap host1 host2 host3) is one scan alert (the
    identifier is the source): the target with the most ports speaks; `targets` lists every
    host it scanned in this slice with its distinct ports (and mode)."""
    return one_per_source(found, "distinct_ports", "targets", lambda f: {
        "target": f.dest_ip, "distinct_ports": f.evidence["distinct_ports"], "mode": f.evidence["mode"]})


def _answered(answers: dict[str, int]) -> bool:
    return any(n for kind, n in answers.items() if kind in ANSWERS)


SPEC = DetectorSpec(
    name=PortScan.name, config=PortScanConfig,
    signature=Signature(9000001, "WIREWATCH port scan", "Attempted Information Leak", 3),
    conversation=True,
    build=lambda cfg, shared: PortScan(cfg.detect.port_scan, cfg.general.time_window, shared.gate),
    tunables=(Tunable("threshold", "distinct_ports", (5, 50, 5),
                      "the slow-scan window's threshold follows threshold (x1.25, rounded): its findings are "
                      "scaled to threshold units, so a slow scan near the edge may be off by one port",
                      slow="slow_threshold", slow_factor=1.25),),
    figure="distinct_ports",
    rises=(Rise("answers.open", 1, 2, "it found an open port (a SYN-ACK, or a UDP answer from a probed port)"),
           Rise("answers.open_or_filtered", 1, 2, "a FIN/NULL/Xmas scan found ports that stayed silent on a host "
                                                  "that answered others closed"),),
)
