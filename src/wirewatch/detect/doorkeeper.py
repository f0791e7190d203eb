"""Admission for per-source state: a key must be seen twice before it gets a table entry.

A random-source flood shows each forged source once; without admission every one of
them would take (and churn) an entry in every per-source table. The doorkeeper is a
fixed direct-mapped array remembering the first row of a key (its item, time and item
labels). The second sighting within the window admits the key with both rows, so
counts stay exact; the only loss is when another key overwrote that slot in between
(the first probe of a group is then not counted). Thresholds are all >= 2, so no
alert depends on a key seen once. (The idea is TinyLFU's "doorkeeper".)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .kernels import door_admit
from .window_util import unique_first_last

Labels = Mapping[str, np.ndarray]


class Doorkeeper:
    def __init__(self, window: float, bits: int, item_labels: Mapping[str, np.dtype]):
        n = 1 << bits
        self.mask = np.uint64(n - 1)
        self.window = window
        self.key = np.zeros(n, np.uint64)
        self.ts = np.zeros(n, np.float64)
        self.item = np.zeros(n, np.uint64)
        self.labels = {name: np.zeros(n, dtype) for name, dtype in item_labels.items()}
        self.held = 0  # first sightings parked (stats)

    def admit(self, known: Callable[[np.ndarray], np.ndarray], gkeys: np.ndarray, items: np.ndarray, ts: np.ndarray,
              glabels: Labels | None, ilabels: Labels | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
        """Rows to count now: those of known or repeated keys, plus parked first rows of
        keys seen again. `known(keys)` says which keys already have table entries."""
        ug, first, _, counts = unique_first_last(gkeys)
        single = np.flatnonzero(counts == 1)
        if single.size:
            single = single[~known(ug[single])]
        if not single.size:
            return gkeys, items, ts, dict(glabels or {}), dict(ilabels or {})
        rows = first[single]
        slot, again, back_item, back_ts = door_admit(self.key, self.ts, self.item, gkeys[rows], items[rows],
                                                     ts[rows], self.window)
        back, bslot = rows[again], slot[again]
        park, pslot = rows[~again], slot[~again]
        back_labels = {k: self.labels[k][bslot] for k in (ilabels or {})}  # read before parking overwrites
        for name, col in (ilabels or {}).items():
            self.labels[name][pslot] = col[park]
        self.held += len(park)
        keep = np.ones(len(gkeys), bool)
        keep[park] = False
        # parked rows go first, so first_seen is the first sighting
        out_g = np.concatenate([gkeys[back], gkeys[keep]])
        out_i = np.concatenate([back_item[again].astype(items.dtype), items[keep]])
        out_t = np.concatenate([back_ts[again], ts[keep]])
        out_gl = {k: np.concatenate([v[back], v[keep]]) for k, v in (glabels or {}).items()}
        out_il = {k: np.concatenate([back_labels[k].astype(v.dtype), v[keep]]) for k, v in (ilabels or {}).items()}
        return out_g, out_i, out_t, out_gl, out_il
