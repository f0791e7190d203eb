"""An alert's packets: a bounded ring of recent packets' summaries (and, live, their bytes),
from which each alert gets the packets that made it, without asking any detector.

The engine adds every decoded batch (numpy slices into preallocated columns: no Python per
packet): a capture file's rows as their time slice is analysed, so an alert finds the same
packets wherever the reader cut its batches; live, each read's rows with its bytes. When an alert is emitted, the packets matching its attacker and victim (src_ip,
dest_ip, proto, dest_port when it has one; the victim's answers too where the evidence is
about a conversation) within its first_seen..last_seen window are selected: for a capture
file their frame numbers (1-based, as Wireshark counts them) and the file; live, the packets'
bytes, which the engine writes to a pcap file (alert_pcap.PcapSpool). Approximate where the
ring is: packets older than the ring (evicted) are not found (the alert then says `partial`),
and a match is by address, protocol, port and time, not by the detector's own bookkeeping.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import ipaddress
import os
import stat
from collections import deque
from typing import Any

import numpy as np

from .decode import PROTO_ICMP, PROTO_ICMPV6, PacketBatch
from .detect.classify.packets import PROTO_NAMES
from .detect.count.table import lazy_zeros

COLUMNS = {"ts": np.float64, "src_hi": np.uint64, "src_lo": np.uint64, "dst_hi": np.uint64, "dst_lo": np.uint64,
           "proto": np.uint8, "sport": np.uint16, "dport": np.uint16, "has_ports": np.bool_}
ROW_BYTES = sum(np.dtype(t).itemsize for t in COLUMNS.values())
PROTO_NUMBERS = {name: number for number, name in PROTO_NAMES.items()}
TOLERANCE_S = 1e-6  # first_seen / last_seen are written to the microsecond
SPAN_ROWS = 1024  # consecutive small batches (live) share one time span of at least this many rows


class PacketRing:
    """The last `max_packets` packets' summaries (at most `max_bytes` of them), oldest
    overwritten first and counted; with `keep_bytes` (live capture) also the packets' bytes,
    whole batches, at most `max_raw_bytes`, oldest batch let go first and counted."""

    def __init__(self, max_packets: int, max_bytes: int, keep_bytes: bool = False, max_raw_bytes: int = 0):
        self.capacity = c = max(1, min(max_packets, max_bytes // ROW_BYTES))
        # lazy_zeros: pages are mapped as the ring fills, so a small capture does not pay for
        # (zero, fault in, keep resident) the whole ring at start (12 MB by default)
        self.ts = lazy_zeros(c, np.float64)
        self.src_hi, self.src_lo = lazy_zeros(c, np.uint64), lazy_zeros(c, np.uint64)
        self.dst_hi, self.dst_lo = lazy_zeros(c, np.uint64), lazy_zeros(c, np.uint64)
        self.proto, self.has_ports = lazy_zeros(c, np.uint8), lazy_zeros(c, np.bool_)
        self.sport, self.dport = lazy_zeros(c, np.uint16), lazy_zeros(c, np.uint16)
        self.total = 0  # rows ever added: row t (0-based over the run) lives at position t % capacity
        self.evicted = 0  # rows overwritten
        self.files: list[str] = []
        self.file_ids: list[dict[str, Any]] = []  # per file: what extract checks it against (begin_file)
        self.file_starts: list[int] = []  # the row that is frame 1 of each file
        # [first row, rows, earliest ts, latest ts] of consecutive batches, oldest first: an
        # alert's window is looked for only in the rows of the spans it overlaps
        self.spans: deque[list[Any]] = deque()
        self.keep_bytes, self.max_raw_bytes = keep_bytes, max_raw_bytes
        self.raw: list[tuple[int, Any]] = []  # (first frame, (buf, meta, sub_usec, linktype, wire_len)), oldest first
        self.raw_bytes = 0
        self.raw_evicted = 0  # packets whose bytes were let go

    def begin_file(self, path: str, start: int | None = None) -> None:
        """Frames of the batches that follow (from row `start` over the run, default the rows
        added so far) are counted from 1 in this capture file. A regular
        file is named with its size and mtime_ns (extract refuses a file that differs: replaced
        or rewritten since); any other input (a pipe, `<(...)`, a device) is marked as one that
        cannot be read again."""
        name = path if path == "-" else os.path.abspath(path)
        ident: dict[str, Any] = {}
        if path != "-":
            try:
                st = os.stat(path)
            except OSError:
                st = None  # read_batches names the problem
            if st is not None and stat.S_ISREG(st.st_mode):
                ident = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            else:
                ident = {"reopenable": False}
        self.files.append(name)
        self.file_ids.append(ident)
        self.file_starts.append(self.total if start is None else start)

    def add(self, batch: PacketBatch, raw: Any = None) -> None:
        """One decoded batch (every frame of it, IP or not: frame numbers count them all);
        `raw` = (buf, meta, sub_usec, linktype, wire_len) keeps its bytes when the ring keeps
        bytes (wire_len: each packet's length on the wire, None when the reader does not know it)."""
        n = len(batch)
        if not n:
            return
        c = self.capacity
        skip = max(0, n - c)  # a batch larger than the ring: its last `capacity` rows
        pos, k = (self.total + skip) % c, n - skip
        first = min(k, c - pos)
        for name in COLUMNS:
            self._put(getattr(self, name), getattr(batch, name)[skip:], pos, first)
        self.evicted += max(0, self.total + n - c) - max(0, self.total - c)
        tmin, tmax = float(batch.ts.min()), float(batch.ts.max())
        last = self.spans[-1] if self.spans else None
        if last is not None and last[1] < SPAN_ROWS:
            last[1] += n
            last[2], last[3] = min(last[2], tmin), max(last[3], tmax)
        else:
            self.spans.append([self.total, n, tmin, tmax])
        self.total += n
        while self.spans[0][0] + self.spans[0][1] <= self.total - c:
            self.spans.popleft()
        if self.keep_bytes and raw is not None:
            # a copy: the live reader hands out its two preallocated buffers in turn, so the
            # batch's bytes and meta are overwritten two batches later
            buf, meta, sub, lt, wire = raw
            raw = (bytes(buf), np.array(meta, copy=True), None if sub is None else np.array(sub, copy=True), lt,
                   None if wire is None else np.array(wire, copy=True))
            self.raw.append((self.total - n, raw))
            self.raw_bytes += _raw_size(raw)
            while self.raw_bytes > self.max_raw_bytes and len(self.raw) > 1:
                first_frame, old = self.raw.pop(0)
                self.raw_bytes -= _raw_size(old)
                self.raw_evicted += len(old[1])

    @staticmethod
    def _put(col: np.ndarray, src: np.ndarray, pos: int, first: int) -> None:
        col[pos:pos + first] = src[:first]
        if first < len(src):
            col[:len(src) - first] = src[first:]

    def match(self, alert: dict[str, Any], limit: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """The alert's packets the ring holds: up to `limit` (rows, files) in capture order
        (rows counted over the run from 0; files index self.files, -1 for none), how many
        matched in all, and whether its window reaches back before the oldest packet the ring
        still holds after evicting some (then some may be missing)."""
        c = self.capacity
        base = max(0, self.total - c)  # the oldest row held
        lo, hi = _window(alert)
        lo, hi = lo - TOLERANCE_S, hi + TOLERANCE_S
        partial = bool(self.evicted) and float(self.ts[base % c]) > lo
        near = [(sp[0], sp[0] + sp[1]) for sp in self.spans if sp[3] >= lo and sp[2] <= hi]
        if not near:
            empty = np.zeros(0, np.int64)
            return empty, empty, 0, partial
        a, b = max(base, min(x for x, _ in near)), max(y for _, y in near)
        found = []
        for first, last in ((a, min(b, a - a % c + c)), (a - a % c + c, b)):  # the range, unwrapped
            if first >= last:
                continue
            sl = slice(first % c, (last - 1) % c + 1)
            ts = self.ts[sl]
            keep = (ts >= lo) & (ts <= hi) & self._endpoints(alert, sl)
            found.append(first + np.flatnonzero(keep))
        rows = np.concatenate(found)
        top = rows[:limit]
        files = np.searchsorted(np.asarray(self.file_starts, np.int64), top, side="right") - 1
        return top, files, int(rows.size), partial

    def _endpoints(self, alert: dict[str, Any], idx: slice) -> np.ndarray:
        attacker, victim = _addr(alert.get("src_ip")), _addr(alert.get("dest_ip"))
        sh, sl, dh, dl = self.src_hi[idx], self.src_lo[idx], self.dst_hi[idx], self.dst_lo[idx]
        if attacker is None and victim is None:
            return np.zeros(len(sh), bool)
        fwd = np.ones(len(sh), bool)
        rev = np.ones(len(sh), bool)
        if attacker is not None:
            fwd &= (sh == attacker[0]) & (sl == attacker[1])
            rev &= (dh == attacker[0]) & (dl == attacker[1])
        if victim is not None:
            fwd &= (dh == victim[0]) & (dl == victim[1])
            rev &= (sh == victim[0]) & (sl == victim[1])
        name = str(alert.get("proto", ""))
        proto = PROTO_NUMBERS.get(name, int(name) if name.isdigit() else None)
        p = self.proto[idx]
        if proto is not None:
            fwd &= p == proto
            rev &= (p == proto) | (p == PROTO_ICMP) | (p == PROTO_ICMPV6)  # an unreachable answers too
        port = alert.get("dest_port")
        if port is not None:
            ports = self.has_ports[idx]
            fwd &= ports & (self.dport[idx] == port)
            rev &= ~ports | (self.sport[idx] == port)
        if alert.get("type") not in conversation_types():
            return fwd
        return fwd | rev

    def frames(self, rows: np.ndarray, files: np.ndarray) -> dict[str, Any]:
        """An alert from capture files: the file of its first packet and its frame numbers
        there (1-based, as Wireshark numbers them)."""
        if not len(rows) or files[0] < 0:
            return {"frames": []}
        f = int(files[0])
        return {"file": self.files[f], **self.file_ids[f],
                "frames": (rows[files == f] - self.file_starts[f] + 1).tolist()}

    def packets(self, rows: np.ndarray) -> list[tuple[int, int, bytes, int, int]]:
        """Live: (sec, sub-second in ns, bytes, linktype, wire length) of these rows whose bytes
        are still held. The wire length is the reader's (libpcap's len); the captured length stands
        in where the reader does not know it (the pcapy-ng fallback)."""
        starts = [f for f, _ in self.raw]
        out = []
        for frame in rows.tolist():
            i = bisect.bisect_right(starts, frame) - 1
            if i < 0:
                continue
            first, (buf, meta, sub, linktype, wire) = self.raw[i]
            row = frame - first
            if row >= len(meta):
                continue
            sec, usec, off, cap = (int(x) for x in meta[row])
            ns = usec * 1000 + (int(sub[row]) if sub is not None else 0)
            out.append((sec, ns, bytes(buf[off:off + cap]), linktype, cap if wire is None else max(cap, int(wire[row]))))
        return out

    def stats(self) -> dict[str, int]:
        out = {"packet_ring_packets": min(self.total, self.capacity), "packet_ring_evicted": self.evicted}
        if self.keep_bytes:
            out["packet_ring_bytes_evicted"] = self.raw_evicted
        return out


def _raw_size(raw: Any) -> int:
    return len(raw[0]) + raw[1].nbytes + (0 if raw[4] is None else raw[4].nbytes)


def _addr(text: Any) -> tuple[np.uint64, np.uint64] | None:
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(str(text))
    except ValueError:
        return None
    v = int(ip) | (0xFFFF << 32) if ip.version == 4 else int(ip)
    return np.uint64(v >> 64), np.uint64(v & 0xFFFF_FFFF_FFFF_FFFF)


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:  # schema.TS_FORMAT; fromisoformat reads it without importing _strptime (12 ms at start-up)
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _window(alert: dict[str, Any]) -> tuple[float, float]:
    ev = alert.get("evidence") or {}
    at = _epoch(alert.get("timestamp"))
    lo, hi = _epoch(ev.get("first_seen")), _epoch(ev.get("last_seen"))
    lo = lo if lo is not None else at
    hi = hi if hi is not None else at
    if lo is None or hi is None:
        return 0.0, -1.0
    return min(lo, hi), max(lo, hi)


@functools.cache
def conversation_types() -> frozenset[str]:
    """The detectors whose evidence is about a conversation (DetectorSpec.conversation): the
    victim's answers belong to their alerts' packets."""
    from .detect import registry
    return frozenset(spec.name for spec in registry.DETECTORS if spec.conversation)
