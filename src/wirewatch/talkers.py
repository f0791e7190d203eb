"""Top talkers by packets: a bounded table, updated per batch."""

from __future__ import annotations

import numpy as np

from .addr import addr_str
from .decode import PacketBatch
from .detect.count.kernels import group, hash_cols
from .detect.count.table import KeyTable


class TopTalkers:
    def __init__(self, capacity: int = 65_536):
        self.table = KeyTable(capacity, {"packets": (np.int64, 1), "bytes": (np.int64, 1),
                                         "src_hi": (np.uint64, 1), "src_lo": (np.uint64, 1)}, reports=())

    def add(self, b: PacketBatch) -> None:
        ip = b.ipver != 0
        if not ip.all():  # else every row counts: no copy of the columns
            b = b.select(np.flatnonzero(ip))
        if not len(b):
            return
        keys = hash_cols(b.src_hi, b.src_lo)
        order, starts, ends = group(keys)
        counts = ends - starts
        last = order[ends - 1]
        slots, new, _ = self.table.upsert(keys[last], b.ts[last], counts)
        # index arrays, not masks: each selects from several columns, and a flood's new
        # sources make `new` a random mask (about 13x slower to apply than an index)
        ok = np.flatnonzero(slots >= 0)
        held = slots[ok]
        c = self.table.cols
        c["packets"][held] += counts[ok]
        nbytes = np.add.reduceat(b.length[order].astype(np.int64), starts)
        c["bytes"][held] += nbytes[ok]
        fresh = ok[new[ok]]
        fresh_slots, fresh_rows = slots[fresh], last[fresh]
        c["src_hi"][fresh_slots] = b.src_hi[fresh_rows]
        c["src_lo"][fresh_slots] = b.src_lo[fresh_rows]

    def top(self, n: int = 10) -> list[dict[str, object]]:
        occ = self.table.occupied()
        c = self.table.cols
        order = np.lexsort((c["src_lo"][occ], -c["packets"][occ]))[:n]
        return [{"src_ip": addr_str(c["src_hi"][s], c["src_lo"][s]), "packets": int(c["packets"][s]),
                 "bytes": int(c["bytes"][s])} for s in occ[order]]
