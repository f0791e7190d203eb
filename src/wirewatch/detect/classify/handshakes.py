"""TCP handshake tracking shared by syn_flood and failed_handshake.

One entry per attempted connection (initiator src, dst, sport, dport), in a bounded
KeyTable. Per batch, in order: SYNs open entries, SYN-ACKs mark them answered, the
initiator's ACK completes them (seen or not seen answered), a responder's RST or an ICMP unreachable fails them;
once a second (packet time) attempts older than `timeout` with no answer fail by timeout.
An attempt leaves the table with the batch that decided its outcome (a SYN after it opens a
new attempt), so the table holds only attempts still undecided.
Each batch's outcomes come back as events; the tracker caches them so two detectors can
share one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...decode import TCP_ACK, TCP_RST, TCP_SYN, PacketBatch
from ...lut import member_table
from ..count.kernels import hash_cols
from ..count.table import KeyTable
from ..count.window_util import unique_last
from .packets import flow_keys, icmp_unreachable, tcp_rows

SYN_SENT, ANSWERED, DONE = 1, 2, 3
COMPLETED, FAILED_RST, FAILED_ICMP, FAILED_TIMEOUT = 0, 1, 2, 3
OUTCOMES = ("completed", "rst", "icmp_unreachable", "timeout")
SWEEP_INTERVAL = 1.0


# eq=False: numpy columns have no value ==, and each method dataclass makes is compiled at import (start-up)
@dataclass(eq=False)
class HandshakeEvents:
    """Outcomes decided in one batch (or sweep); rows are attempts."""

    outcome: np.ndarray  # int8: COMPLETED / FAILED_*
    ts: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    dport: np.ndarray

    def __len__(self) -> int:
        return len(self.outcome)


_EMPTY = {"state": (np.int8, 1), "syn_ts": (np.float64, 1), "src_hi": (np.uint64, 1), "src_lo": (np.uint64, 1),
          "dst_hi": (np.uint64, 1), "dst_lo": (np.uint64, 1), "dport": (np.uint16, 1)}


class HandshakeTracker:
    def __init__(self, timeout: float, capacity: int):
        self.timeout = float(timeout)
        self.table = KeyTable(capacity, _EMPTY)
        self.next_sweep = 0.0
        self._cache: tuple[int, HandshakeEvents] | None = None
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self._pending_removal: np.ndarray | None = None

    def observe(self, b: PacketBatch) -> HandshakeEvents:
        """This batch's outcomes; computed once per batch (b.seq) for all detectors sharing it."""
        if b.seq >= 0 and self._cache is not None and self._cache[0] == b.seq:
            return self._cache[1]
        events = self._process(b)
        self._cache = (b.seq, events)
        return events

    def tick(self, now: float) -> HandshakeEvents:
        """No packets for a while (live): attempts unanswered for `timeout` by the clock fail now."""
        if now < self.next_sweep:
            return self._events([])
        self.next_sweep = now + SWEEP_INTERVAL
        return self._events([(self._sweep(now), FAILED_TIMEOUT)])

    def _process(self, b: PacketBatch) -> HandshakeEvents:
        t = self.table
        tcp = tcp_rows(b) & b.flags_ok
        f = b.tcp_flags
        parts: list[tuple[np.ndarray, int]] = []
        syn = np.flatnonzero(tcp & ((f & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN))
        if syn.size:
            keys, _ = self._forward(b, syn)
            uk, last, _ = unique_last(keys)
            rows = syn[last]
            slots, new, _ = t.upsert(uk, b.ts[rows])
            s, r = slots[new & (slots >= 0)], rows[new & (slots >= 0)]
            t.cols["state"][s] = SYN_SENT
            t.cols["syn_ts"][s] = b.ts[r]
            for name, col in (("src_hi", b.src_hi), ("src_lo", b.src_lo), ("dst_hi", b.dst_hi),
                              ("dst_lo", b.dst_lo), ("dport", b.dport)):
                t.cols[name][s] = col[r]
        # replies are keyed back onto the initiator's tuple
        synack = np.flatnonzero(tcp & ((f & (TCP_SYN | TCP_ACK | TCP_RST)) == (TCP_SYN | TCP_ACK)))
        self._transition(self._reverse(b, synack), (SYN_SENT,), ANSWERED)
        ack = np.flatnonzero(tcp & ((f & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_ACK))
        # the initiator's ACK completes the attempt even when the SYN-ACK is not in the
        # capture (one-way captures, asymmetric routes): it can only ACK what it received
        done = self._transition(self._forward(b, ack), (SYN_SENT, ANSWERED), DONE)
        parts.append((done, COMPLETED))
        rst = np.flatnonzero(tcp & ((f & TCP_RST) != 0))
        parts.append((self._transition(self._reverse(b, rst), (SYN_SENT, ANSWERED), DONE), FAILED_RST))
        un = np.flatnonzero(icmp_unreachable(b) & (b.inner_proto == 6))
        ukeys = hash_cols(b.dst_hi[un], b.dst_lo[un], b.inner_dst_hi[un], b.inner_dst_lo[un],
                          b.inner_sport[un], b.inner_dport[un])
        parts.append((self._transition((ukeys, b.ts[un]), (SYN_SENT, ANSWERED), DONE), FAILED_ICMP))
        now = float(b.ts.max()) if len(b) else 0.0
        if now >= self.next_sweep:
            parts.append((self._sweep(now), FAILED_TIMEOUT))
            self.next_sweep = now + SWEEP_INTERVAL
        return self._events(parts)

    @staticmethod
    def _forward(b: PacketBatch, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return flow_keys(b)[0][rows], b.ts[rows]

    @staticmethod
    def _reverse(b: PacketBatch, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return flow_keys(b)[1][rows], b.ts[rows]

    def _transition(self, keyed: tuple[np.ndarray, np.ndarray], from_states: tuple[int, ...], to: int) -> np.ndarray:
        """Move matching attempts to state `to`; return the slots that moved."""
        keys, ts = keyed
        if not len(keys):
            return np.zeros(0, np.int64)
        uk, last, _ = unique_last(keys)
        slots = self.table.find(uk)
        known = slots >= 0
        slots, key_ts = slots[known], ts[last][known]  # each attempt's own latest packet, not the batch's
        hit = member_table(from_states)[self.table.cols["state"][slots]]
        moved = slots[hit]
        self.table.cols["state"][moved] = to
        self.table.last_seen[moved] = np.maximum(self.table.last_seen[moved], key_ts[hit])
        return moved

    def _sweep(self, now: float) -> np.ndarray:
        """Attempts with no answer after `timeout` fail; finished and stale entries go."""
        t = self.table
        # the columns up to the high-water mark, not gathered at the live rows: a free row's
        # state is 0 (KeyTable.remove zeroes it), which no test below selects
        state = t.cols["state"][:t.used]
        age = now - t.cols["syn_ts"][:t.used]
        timed_out = np.flatnonzero((state == SYN_SENT) & (age > self.timeout))
        # answered-but-unfinished (half-open) attempts stay a while, then go without an outcome
        self._pending_removal = np.flatnonzero((state == ANSWERED) & (age > self.timeout))
        t.cols["state"][timed_out] = DONE
        t.last_seen[timed_out] = t.cols["syn_ts"][timed_out] + self.timeout
        return timed_out

    def _events(self, parts: list[tuple[np.ndarray, int]]) -> HandshakeEvents:
        t = self.table
        slots = np.concatenate([s for s, _ in parts]) if parts else np.zeros(0, np.int64)
        outcome = np.concatenate([np.full(len(s), o, np.int8) for s, o in parts]) if parts else np.zeros(0, np.int8)
        for o, name in enumerate(OUTCOMES):
            self.counts[name] += int(np.count_nonzero(outcome == o))
        ts = t.last_seen[slots]
        if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():
            # in packet-time order, as a batch's rows are (the windows take a group's first
            # row as its first_seen): the parts come by outcome, a sweep's by row
            order = np.argsort(ts, kind="stable")
            slots, outcome, ts = slots[order], outcome[order], ts[order]
        # gathers by slot are copies already: the events keep their values when the rows go
        ev = HandshakeEvents(outcome, ts, *(t.cols[c][slots] for c in ("src_hi", "src_lo", "dst_hi", "dst_lo", "dport")))
        # an attempt with an outcome goes now: a late packet of it would find nothing to move
        # in a DONE row either, and a new SYN restarts a DONE row as it opens a new one, so
        # keeping it would only hold its room (a forged-SYN flood's timeouts for another second)
        removal = slots if self._pending_removal is None else np.concatenate([slots, self._pending_removal])
        if len(removal):
            t.remove(removal, report=False)
        self._pending_removal = None
        return ev

    def stats(self) -> dict[str, int]:
        return {"handshakes_tracked": self.table.size, "handshakes_evicted": self.table.evicted,
                **{f"handshakes_{k}": v for k, v in self.counts.items()}}
