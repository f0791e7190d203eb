"""Admission for per-source state: a key must be seen twice before it gets a table entry.

A random-source flood shows each forged source once; without admission every one of
them would take (and churn) an entry in every per-source table. The doorkeeper is a
fixed direct-mapped array remembering the first row of a key (its time and the columns
that differ from row to row: an item and its labels, or metric values). The second
sighting within the window admits the key with both rows, so counts stay exact, whether
it comes back with one row or several in a batch; the only loss is when another key
overwrote that slot in between (the first row of a key is then not counted). Thresholds are all >= 2, so no alert depends on a key seen once.
(The idea is TinyLFU's "doorkeeper".)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import DTypeLike

from .kernels import door_admit
from .table import lazy_zeros
from .window_util import unique_first_last

Columns = Mapping[str, np.ndarray]


class Doorkeeper:
    def __init__(self, window: float, bits: int, parked: Mapping[str, DTypeLike]):
        """`parked`: the per-row columns a first sighting must keep until it is replayed."""
        n = 1 << bits
        self.window = window
        self.key = lazy_zeros(n, np.uint64)
        self.ts = lazy_zeros(n, np.float64)
        self.parked = {name: lazy_zeros(n, dtype) for name, dtype in parked.items()}
        self.held = 0  # first sightings parked (stats)

    def admit(self, known: Callable[[np.ndarray], np.ndarray], keys: np.ndarray, ts: np.ndarray,
              parked: Columns, same: Columns, grouped: tuple[np.ndarray, ...] | None = None
              ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Rows to count now: those of known or repeated keys, plus parked first rows of keys
        seen again (first, so first_seen is the first sighting). `parked` columns are
        replayed from the first sighting, `same` columns (equal for every row of a key)
        from the current row. `known(keys)` says which keys already have table entries.
        A key that comes back with several rows at once is admitted with them and, when its
        first sighting is still parked, with that row too (it was seen before this batch).
        `grouped`: unique_first_last(keys) when the caller has it. When every key is known or
        repeated, `keys` itself comes back (the caller's grouping of it still holds)."""
        uk, first, _, counts = grouped if grouped is not None else unique_first_last(keys)
        unknown = ~known(uk)
        single = np.flatnonzero(unknown & (counts == 1))
        multi = np.flatnonzero(unknown & (counts > 1))
        if not single.size and not multi.size:
            return keys, ts, dict(parked), dict(same)
        # repeated keys: replay a parked first sighting (and free its slot), never park
        mrows = first[multi]
        mslot = (uk[multi] & np.uint64(len(self.key) - 1)).astype(np.int64)
        mback = (self.key[mslot] == uk[multi]) & (ts[mrows] - self.ts[mslot] <= self.window)
        mback = np.flatnonzero(mback)  # index arrays, not masks, where one selects from several columns
        mrows, mslot = mrows[mback], mslot[mback]
        mreplay = {k: self.parked[k][mslot] for k in parked}
        mts = self.ts[mslot]
        self.key[mslot] = 0
        # single rows: the compiled direct-mapped memory parks them or brings them back
        rows = first[single]
        slot, again, back_ts = door_admit(self.key, self.ts, keys[rows], ts[rows], self.window)
        again, stay = np.flatnonzero(again), np.flatnonzero(~again)
        sback, bslot = rows[again], slot[again]
        park, pslot = rows[stay], slot[stay]
        sreplay = {k: self.parked[k][bslot] for k in parked}  # read before parking overwrites
        for name, col in parked.items():
            self.parked[name][pslot] = col[park]
        self.held += len(park)
        # replayed rows in key order (of first occurrence), as one batch of first sightings
        order = np.argsort(np.concatenate([sback, mrows]), kind="stable")
        back = np.concatenate([sback, mrows])[order]
        replay_ts = np.concatenate([back_ts[again], mts])[order]
        replay = {k: np.concatenate([sreplay[k], mreplay[k]])[order] for k in parked}
        kept = np.ones(len(keys), bool)
        kept[park] = False
        keep = np.flatnonzero(kept)
        return (np.concatenate([keys[back], keys[keep]]), np.concatenate([replay_ts, ts[keep]]),
                {k: np.concatenate([replay[k].astype(v.dtype), v[keep]]) for k, v in parked.items()},
                {k: np.concatenate([v[back], v[keep]]) for k, v in same.items()})
