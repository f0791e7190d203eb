"""blacklist: any packet to or from an address in a blocklist."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..addr import addr_str
from ..blocklist import Blocklist, ParsedList, combine, read_file
from ..decode import PacketBatch
from ..settings import Frozen, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature
from .classify.packets import proto_name
from .count.report import times
from .count.window_util import sorted_unique

MAX_PEERS = 10


@dataclass(frozen=True, eq=False, repr=False)
class BlacklistConfig(Frozen):
    enabled: bool = setting(True, "Alert on traffic to or from blocklisted addresses.")
    files: list[str] = setting([], "Blocklist files: one IP or CIDR per line; # and ; comments; "
                                   "Spamhaus DROP, FireHOL netset and abuse.ch CSV layouts work as-is.")
    urls: list[str] = setting([], "Blocklist feeds (--blacklist-url): fetched at start and every `refresh` "
                                  "seconds in the background, same formats as files; the last good copy "
                                  "is kept in `cache_dir`.")
    refresh: float = seconds(3600.0, "Seconds between feed refreshes (conditional requests: ETag, "
                                     "If-Modified-Since).", 1)
    max_shrink: float = setting(0.5, "A new copy of a feed with fewer than (1 - max_shrink) x the entries "
                                     "of the previous one is rejected and the previous list kept.", 0, 1)
    max_bytes: int = setting(64 << 20, "Largest feed download accepted, bytes.", 1024)
    cache_dir: str = setting("", "Where the last good copy of each feed is kept (owned by the sensor's "
                                 "unprivileged user); empty = blocklists/ in store.state_dir.")


class Blacklist(Reconfigurable):
    name = "blacklist"

    def __init__(self, cfg: BlacklistConfig, blocklist: Blocklist | None = None):
        self.cfg = cfg
        self.file_lists = [read_file(p) for p in cfg.files]
        self.feed_lists: dict[str, ParsedList] = {}
        self._rebuilding = threading.Lock()  # SIGHUP (main thread) and the feed thread both rebuild
        self.feeds: Any = None  # feeds.FeedSet, attached by feeds.attach when detect.blacklist.urls is set
        self.blocklist = blocklist if blocklist is not None else combine(self.file_lists)
        self.matched_packets = 0

    def configure(self) -> None:
        """On reload, read the blocklist files again (a bad file keeps the old list)."""
        if getattr(self, "blocklist", None) is not None:
            self.file_lists = [read_file(p) for p in self.cfg.files]
            self._rebuild()

    def use_feed(self, parsed: ParsedList) -> None:
        """A feed's new copy (from the refresh thread): the matcher is rebuilt aside and
        swapped in with one assignment, so a batch sees either the old list or the new."""
        self.feed_lists[parsed.name] = parsed
        self._rebuild()

    def _rebuild(self) -> None:
        with self._rebuilding:
            self.blocklist = combine(self.file_lists + list(self.feed_lists.values()))

    def lists(self) -> list[dict[str, Any]]:
        """Each list's name and entries; a feed's also its last fetch time and last error."""
        files: list[dict[str, Any]] = [{"list": pl.name, "entries": len(pl)} for pl in self.file_lists]
        return files + (self.feeds.status() if self.feeds is not None else [])

    def observe(self, b: PacketBatch) -> list[Finding]:
        blocklist = self.blocklist  # one list for the whole batch, whatever the refresh thread does
        if not len(blocklist) or not len(b):
            return []
        hits: dict[tuple[str, tuple[str, str]], list[int]] = {}
        idx = np.flatnonzero(b.ipver == 4)
        every = len(idx) == len(b)  # all IPv4 (the usual case): the columns themselves, not a gathered copy
        v6 = np.flatnonzero(b.ipver == 6) if blocklist.v6_entry else idx[:0]
        for side, hi, lo in (("src", b.src_hi, b.src_lo), ("dst", b.dst_hi, b.dst_lo)):
            if idx.size:
                pos, m = blocklist.matches_v4((lo if every else lo[idx]) & np.uint64(0xFFFFFFFF))
                for entry_i in sorted_unique(m):
                    rows = idx[pos[m == entry_i]]
                    self._collect(hits, side, blocklist.v4_source(int(entry_i)), rows, b)
            if v6.size:
                values = (hi[v6].astype(object) << 64) | lo[v6].astype(object)
                for value in set(values.tolist()):
                    i = blocklist.match_v6(value)
                    if i >= 0:
                        self._collect(hits, side, blocklist.v6_source(i), v6[values == value], b)
        # the listed host as source first: "traffic from it" is the more useful alert
        return [self._finding(side, src, rows, b) for (side, src), rows in sorted(hits.items(), reverse=True)]

    @staticmethod
    def _collect(hits: dict, side: str, source: tuple[str, str], rows: np.ndarray, b: PacketBatch) -> None:
        hits.setdefault((side, source), []).extend(rows.tolist())

    def _finding(self, side: str, source: tuple[str, str], rows_list: list[int], b: PacketBatch) -> Finding:
        entry, list_name = source
        rows = np.array(sorted(rows_list))
        self.matched_packets += len(rows)
        r = rows[0]
        src, dst = addr_str(b.src_hi[r], b.src_lo[r]), addr_str(b.dst_hi[r], b.dst_lo[r])
        listed, peer_hi, peer_lo = (src, b.dst_hi, b.dst_lo) if side == "src" else (dst, b.src_hi, b.src_lo)
        first = rows[:1000]  # each distinct peer formatted once (a flood repeats a few peers many times)
        peers = sorted({addr_str(h, l) for h, l in set(zip(peer_hi[first].tolist(), peer_lo[first].tolist()))})[:MAX_PEERS]
        direction = "from" if side == "src" else "to"
        return Finding(
            type=self.name, identifier=(listed, entry), ts=float(b.ts[rows[0]]),  # first contact
            message=f"Blacklisted address {listed} ({list_name}: {entry}): traffic {direction} it",
            src_ip=src, dest_ip=dst,
            src_port=int(b.sport[r]) if b.has_ports[r] else None,
            dest_port=int(b.dport[r]) if b.has_ports[r] else None, proto=proto_name(b.proto[r]),
            evidence={"list": list_name, "entry": entry, "address": listed, "direction": side,
                      "packets": int(len(rows)), "bytes": int(b.length[rows].sum()),
                      "peers": peers, **times(b.ts[rows[0]], b.ts[rows[-1]])},
            target="src" if side == "dst" else "dest",  # the listed host is the attacker either way
        )

    def expire(self, now: float) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {"blacklist_entries": len(self.blocklist), "blacklist_packets": self.matched_packets}


SPEC = DetectorSpec(
    name=Blacklist.name, config=BlacklistConfig,
    signature=Signature(9000008, "WIREWATCH blacklisted address", "Potentially Bad Traffic", 1),
    conversation=True,
    build=lambda cfg, shared: Blacklist(cfg.detect.blacklist),
    storm_label="Blacklisted-address alerts",
)
