"""failed_handshake: one source keeps opening TCP connections that fail.

Failures are attempts answered by RST, by ICMP unreachable, or not answered within
`timeout` seconds; the pattern is many failures to one or a few ports (brute force,
a retrying client), as opposed to a scan's breadth.

A pool's client is not retrying: a load balancer's health checks or a monitor connect to the
same port of many hosts, round after round, and a member whose service is down refuses every
round (hb31: 8 RSTs in 16 s, as many as a retrying client's). What sets them apart is the rest
of the pool: a source whose connections to that port completed, within the window, with more
other hosts than it failed with (those hosts included) is finding members down, not failing at
one host; the failing host's own completions do not count (a flaky or overloaded server that
takes some connections is still one host failing). Failures of (source, host) pairs the
doorkeeper admitted while they hit at most `max_ports` ports (the pairs that can alert; a scan's
pair takes none of the pool's room), and the completions of the (source, port) they failed on, are
counted per (source, port) in a second table (`pool`), so a retrying client, which connects to
that port of no other host, alerts as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..decode import PacketBatch
from ..settings import Frozen, cap, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature, Tunable
from .classify.handshakes import COMPLETED, FAILED_ICMP, FAILED_RST, FAILED_TIMEOUT, HandshakeEvents, HandshakeTracker
from .count.kernels import hash_cols
from .count.report import COOLDOWN, Gate, near, near_miss
from .count.window import DistinctCounter

SAMPLE = 10


@dataclass(frozen=True, eq=False, repr=False)
class FailedHandshakeConfig(Frozen):
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
        # per (source, port): the hosts it failed with (admitted pairs) or completed with (sized as
        # the failures' table, max_sources)
        self.pool = DistinctCounter(cfg.window, cfg.max_sources, cfg.max_sources * 4, None, {"completed": np.int64})

    def configure(self) -> None:
        """The shared handshake tracker's timeout is this detector's setting."""
        self.tracker.timeout = float(self.cfg.timeout)

    def observe(self, b: PacketBatch) -> list[Finding]:
        return self._failures(self.tracker.observe(b))

    def tick(self, now: float) -> list[Finding]:
        """On a quiet wire, unanswered attempts still time out (and can alert)."""
        return self._failures(self.tracker.tick(now))

    def _failures(self, ev: HandshakeEvents) -> list[Finding]:
        failed = ev.outcome != COMPLETED
        fail = np.flatnonzero(failed)
        if not fail.size:
            self._pool_completions(ev, failed)
            return []
        keys = hash_cols(ev.src_hi[fail], ev.src_lo[fail], ev.dst_hi[fail], ev.dst_lo[fail])
        ports = ev.dport[fail].astype(np.int64)
        labels = {"src_hi": ev.src_hi[fail], "src_lo": ev.src_lo[fail], "dst_hi": ev.dst_hi[fail], "dst_lo": ev.dst_lo[fail]}
        touched = self.failures.observe(keys, ports, ev.ts[fail], labels, {"port": ports})
        self._count_reasons(keys, ports, ev.outcome[fail])
        # the pool counts the failures of pairs that can alert: admitted (a forged SYN's one timeout
        # stays out) and on at most max_ports ports (a scanned host's pair cannot: one pool group
        # per port scanned would only take room)
        pair = self.failures.groups.find(keys)
        can = pair >= 0
        can[can] = self.failures.distinct(pair[can]) <= self.cfg.max_ports
        admitted = fail[can]
        self._pool_add(ev, admitted, completed=False)
        self._pool_completions(ev, failed)
        c = self.failures
        hot = touched[(c.hits(touched) >= self.cfg.threshold) & (c.distinct(touched) <= self.cfg.max_ports)]
        now = float(ev.ts[fail].max())
        hot = c.would_pass(hot, now, self.cfg.window)  # the pool test, a loop per key, only for those
        hot = hot[np.array([not self._pool_member(int(s)) for s in hot.tolist()], bool)]
        return [self._finding(int(s)) for s in c.due(hot, now, self.cfg.window)]

    @staticmethod
    def _pool_keys(ev: HandshakeEvents, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source, port) group keys and host items of these events' rows."""
        return (hash_cols(ev.src_hi[rows], ev.src_lo[rows], ev.dport[rows].astype(np.uint64)),
                hash_cols(ev.dst_hi[rows], ev.dst_lo[rows]))

    def _pool_add(self, ev: HandshakeEvents, rows: np.ndarray, completed: bool) -> None:
        if not rows.size:
            return
        gkeys, hosts = self._pool_keys(ev, rows)
        self.pool.observe(gkeys, hosts, ev.ts[rows])
        if completed:
            self.pool.add_to_items(self.pool.find_items(gkeys, hosts), "completed", np.ones(rows.size, bool))

    def _pool_completions(self, ev: HandshakeEvents, failed: np.ndarray) -> None:
        """Completed connections of the (source, port)s that have failures in the table: the rest
        of a pool (most batches: no such group, nothing to look up)."""
        if not self.pool.groups.size:
            return
        done = np.flatnonzero(~failed)
        if done.size:
            done = done[self.pool.groups.find(self._pool_keys(ev, done)[0]) >= 0]
            self._pool_add(ev, done, completed=True)

    def _pool_member(self, slot: int) -> bool:
        """Whether every port this (source, host) pair failed on is a pool's port: within the window
        the source completed connections to it with more other hosts than it failed with."""
        c, pool = self.failures, self.pool
        src_hi, src_lo = c.table.cols["src_hi"][slot], c.table.cols["src_lo"][slot]
        host = hash_cols(c.table.cols["dst_hi"][slot:slot + 1], c.table.cols["dst_lo"][slot:slot + 1])[0]
        ports = np.unique(c.item(c.members(slot), "port")).astype(np.uint64)
        groups = pool.groups.find(hash_cols(np.full(ports.size, src_hi), np.full(ports.size, src_lo), ports))
        if not ports.size or (groups < 0).any():
            return False
        for g in groups.tolist():
            items = pool.members(g)
            ok = pool.item(items, "completed") > 0
            other = pool.items.keys[items] != hash_cols(pool.item(items, "group"), np.full(items.size, host))
            up = int((ok & other).sum())
            if up <= items.size - up:  # the failing host, and every host it never completed with
                return False
        return True

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
        most max_ports ports), but a pool's client finding a member down."""
        c = self.failures
        occ = c.occupied()
        occ = occ[c.distinct(occ) <= self.cfg.max_ports]
        slots, figure = near(occ, c.hits(occ), self.cfg.threshold)
        return [near_miss(self.name, c.src(s), n, self.cfg.threshold, "failed handshakes", self.cfg.window,
                          dest_ip=c.dst(s)) for s, n in zip(slots.tolist(), figure.tolist())
                if not self._pool_member(s)]

    def expire(self, now: float) -> None:
        self.failures.expire(now)
        self.pool.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.failures.stats("failed_handshake"), **self.pool.stats("failed_handshake_pool"),
                **self.tracker.stats()}


SPEC = DetectorSpec(
    name=FailedHandshake.name, config=FailedHandshakeConfig,
    signature=Signature(9000005, "WIREWATCH repeated failed TCP handshakes", "Misc activity", 3),
    conversation=True,
    build=lambda cfg, shared: FailedHandshake(cfg.detect.failed_handshake, shared.handshakes(), shared.gate),
    tunables=(Tunable("threshold", "failed_handshakes", (2, 20, 1)),),
    figure="failed_handshakes", storm_label="Repeated failed TCP handshakes",
)
