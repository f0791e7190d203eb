"""failed_handshake: one source keeps opening TCP connections that fail.

Failures are attempts answered by RST, by ICMP unreachable, or not answered within
`timeout` seconds; the pattern is many failures to one or a few ports (brute force,
a retrying client), as opposed to a scan's breadth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..decode import PacketBatch
from ..settings import cap, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature, Tunable
from .classify.handshakes import COMPLETED, FAILED_ICMP, FAILED_RST, FAILED_TIMEOUT, HandshakeEvents, HandshakeTracker
from .count.kernels import hash_cols
from .count.report import COOLDOWN, Gate, near, near_miss
from .count.window import DistinctCounter

SAMPLE = 10


@dataclass(frozen=True)
class FailedHandshakeConfig:
    enabled: bool = setting(True, "Detect repeated failed TCP handshakes from one source.")
    threshold: int = setting(8, "Failed handshakes from one source to one host within the window.", 1)
    max_ports: int = setting(5, "Fire only if the failures hit at most this many ports (else it is a scan).", 1)
    window: float = seconds(60.0, "Window in seconds.", 1)
    timeout: float = seconds(3.0, "Seconds without an answer after which an attempt has failed.", 0.1)
    max_attempts: int = cap(262_144, "Cap on handshakes in progress tracked.")
    max_sources: int = cap(32_768, "Cap on (source, host) pairs tracked (x4 failed ports).")


class FailedHandshake(Reconfigurable):
    name = "failed_handshake"

    def __init__(self, cfg: FailedHandshakeConfig, tracker: HandshakeTracker, gate: Gate = COOLDOWN):
        self.cfg = cfg
        self.tracker = tracker
        labels = {"src_hi": np.uint64, "src_lo": np.uint64, "dst_hi": np.uint64, "dst_lo": np.uint64}
        self.failures = DistinctCounter(cfg.window, cfg.max_sources, cfg.max_sources * 4, labels,
                                        {"port": np.int64, "rst": np.int64, "icmp": np.int64, "timeout": np.int64},
                                        doorkeeper_bits=16, gate=gate)

    def configure(self) -> None:
        """The shared handshake tracker's timeout is this detector's setting."""
        self.tracker.timeout = float(self.cfg.timeout)

    def observe(self, b: PacketBatch) -> list[Finding]:
        return self._failures(self.tracker.observe(b))

    def tick(self, now: float) -> list[Finding]:
        """On a quiet wire, unanswered attempts still time out (and can alert)."""
        return self._failures(self.tracker.tick(now))

    def _failures(self, ev: HandshakeEvents) -> list[Finding]:
        fail = np.flatnonzero(ev.outcome != COMPLETED)
        if not fail.size:
            return []
        keys = hash_cols(ev.src_hi[fail], ev.src_lo[fail], ev.dst_hi[fail], ev.dst_lo[fail])
        ports = ev.dport[fail].astype(np.int64)
        labels = {"src_hi": ev.src_hi[fail], "src_lo": ev.src_lo[fail], "dst_hi": ev.dst_hi[fail], "dst_lo": ev.dst_lo[fail]}
        touched = self.failures.observe(keys, ports, ev.ts[fail], labels, {"port": ports})
        self._count_reasons(keys, ports, ev.outcome[fail])
        c = self.failures
        hot = touched[(c.hits(touched) >= self.cfg.threshold) & (c.distinct(touched) <= self.cfg.max_ports)]
        now = float(ev.ts[fail].max())
        return [self._finding(int(s)) for s in c.due(hot, now, self.cfg.window)]

    def _count_reasons(self, keys: np.ndarray, ports: np.ndarray, outcome: np.ndarray) -> None:
        slots = self.failures.find_items(keys, ports)
        for code, col in ((FAILED_RST, "rst"), (FAILED_ICMP, "icmp"), (FAILED_TIMEOUT, "timeout")):
            self.failures.add_to_items(slots, col, outcome == code)

    def _finding(self, slot: int) -> Finding:
        c = self.failures
        items = c.members(slot)
        src, dst = c.src(slot), c.dst(slot)
        ports = sorted(int(p) for p in c.item(items, "port"))
        total = c.item_hits(items)
        return Finding(
            type=self.name, identifier=(src, dst), ts=c.last_seen(slot),
            message=f"Repeated failed TCP handshakes from {src} to {dst} (ports {', '.join(map(str, ports[:SAMPLE]))})",
            src_ip=src, dest_ip=dst, dest_port=ports[0] if len(ports) == 1 else None, proto="TCP",
            evidence={"failed_handshakes": total, "window_s": self.cfg.window, "threshold": self.cfg.threshold,
                      "distinct_ports": len(ports), "max_ports": self.cfg.max_ports, "ports": ports[:SAMPLE],
                      "answered_rst": int(c.item(items, "rst").sum()), "icmp_unreachable": int(c.item(items, "icmp").sum()),
                      "unanswered": int(c.item(items, "timeout").sum()), "timeout_s": self.cfg.timeout, **c.seen(slot)},
        )

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """(source, destination) pairs at >= half the threshold of failed handshakes (over at
        most max_ports ports)."""
        c = self.failures
        occ = c.occupied()
        occ = occ[c.distinct(occ) <= self.cfg.max_ports]
        slots, figure = near(occ, c.hits(occ), self.cfg.threshold)
        return [near_miss(self.name, c.src(s), n, self.cfg.threshold, "failed handshakes", self.cfg.window,
                          dest_ip=c.dst(s)) for s, n in zip(slots.tolist(), figure.tolist())]

    def expire(self, now: float) -> None:
        self.failures.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.failures.stats("failed_handshake"), **self.tracker.stats()}


SPEC = DetectorSpec(
    name=FailedHandshake.name, config=FailedHandshakeConfig,
    signature=Signature(9000005, "WIREWATCH repeated failed TCP handshakes", "Misc activity", 3),
    conversation=True,
    build=lambda cfg, shared: FailedHandshake(cfg.detect.failed_handshake, shared.handshakes(), shared.gate),
    tunables=(Tunable("threshold", "failed_handshakes", (2, 20, 1)),),
    figure="failed_handshakes", storm_label="Repeated failed TCP handshakes",
)
