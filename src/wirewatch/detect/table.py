"""A bounded hash table held in numpy arrays, updated a whole batch of keys at a time.

Detector state is keyed by things an attacker chooses (addresses, ports), so every map
has a hard capacity: when full, the least valuable entries are evicted and counted. Value
is a per-table priority (e.g. how many probes a scanner has made), then recency: a flood
of one-packet random sources evicts its own kind first, not the real scanner in it.
Staleness is expiry's job, not eviction's.
Keys are 64-bit hashes of the fields that make the key; the fields themselves are kept in
"label" columns so alerts can name the addresses. Linear probing; removal (expiry,
eviction) leaves tombstones that lookups skip and inserts reuse, and the table is rebuilt
only when live entries plus tombstones pass three quarters of the slots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from . import kernels
from .kernels import TOMBSTONE

INITIAL_SLOTS = 1024
EVICT_FRACTION = 4  # when full, free a quarter of the table at once: eviction is O(n), so do it rarely


def _next_pow2(n: int) -> int:
    return 1 << max(4, int(n - 1).bit_length())


class KeyTable:
    """uint64 key -> row of columns; capacity-bounded, evicting the lowest priority first."""

    def __init__(self, capacity: int, columns: Mapping[str, tuple[np.dtype, int | tuple[int, ...]]] | None = None,
                 priority: Callable[[np.ndarray], np.ndarray] | None = None):
        self.capacity = max(1, int(capacity))
        self.priority = priority
        self.max_slots = _next_pow2(self.capacity * 2)
        self.schema = dict(columns or {})
        self.size = 0
        self.evicted = 0
        self._allocate(min(self.max_slots, INITIAL_SLOTS))

    def _allocate(self, nslots: int) -> None:
        """(Re)allocate empty arrays; the table grows by doubling up to max_slots."""
        self.nslots = nslots
        self.mask = nslots - 1
        self.keys = np.zeros(nslots, np.uint64)
        self.last_seen = np.full(nslots, np.inf)  # inf on free slots: expiry never picks them
        self.cols: dict[str, np.ndarray] = {name: self._alloc(dt, w) for name, (dt, w) in self.schema.items()}
        self.size = 0
        self.tombs = 0

    def _make_room(self, n_new: int) -> None:
        """Keep live + removed + new entries under half the slots: grow by doubling up to
        max_slots, else sweep out tombstones (short probe runs keep lookups cheap)."""
        need = self.size + self.tombs + n_new
        target = self.nslots
        while need > target // 2 and target < self.max_slots:
            target *= 2
        if target != self.nslots or need > (self.nslots * 3) // 4:
            self._rebuild(self.occupied(), target)

    def _alloc(self, dtype: np.dtype, width: int | tuple[int, ...]) -> np.ndarray:
        """A column: one value per slot, or a (width,) / (w1, w2) block per slot."""
        shape = (self.nslots,) if width == 1 else (self.nslots, *np.atleast_1d(width))
        return np.zeros(shape, dtype)

    # -- lookup / insert --------------------------------------------------------------
    def find(self, keys: np.ndarray) -> np.ndarray:
        """Slot of each key, -1 where absent."""
        return kernels.find(self.keys, keys)

    def upsert(self, keys: np.ndarray, ts: np.ndarray,
               weight: np.ndarray | Callable[[], np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Find or insert unique keys; set last_seen. Returns (slots, is_new, evicted rows).

        If this batch alone brings more new keys than fit, the heaviest (`weight`, e.g.
        packets in this batch; a callable is only called then), then most recent, are kept;
        the rest are counted as evicted.
        """
        keys = np.asarray(keys, np.uint64)
        slots = self.find(keys)
        new = slots < 0
        n_new = int(np.count_nonzero(new))
        evicted: dict[str, np.ndarray] = {}
        if n_new and self.size + self.tombs + n_new > self.nslots // 2:
            self._make_room(n_new)
            slots = self.find(keys)
        if n_new and self.size + n_new > self.capacity:
            excess = self.size + n_new - self.capacity
            evicted = self._evict(min(self.size, excess + self.capacity // EVICT_FRACTION))
            if self.size + self.tombs + n_new > (self.nslots * 3) // 4:
                self._rebuild(self.occupied(), self.nslots)
            slots = self.find(keys)
            new = slots < 0
            if self.size + int(np.count_nonzero(new)) > self.capacity:  # batch alone overflows
                cand = np.flatnonzero(new)
                room = max(0, self.capacity - self.size)
                if callable(weight):
                    weight = weight()
                w = np.zeros(len(cand)) if weight is None else -np.asarray(weight)[cand]
                order = np.lexsort((-np.asarray(ts)[cand], w))  # heaviest, then most recent
                drop = cand[order[room:]]
                self.evicted += len(drop)
                new[drop] = False
                slots[drop] = -2  # not stored: callers must ignore negative slots
        if new.any():
            slots[new] = self._insert(keys[new])
        ok = slots >= 0
        fresh = slots[new]
        self.last_seen[fresh] = -np.inf
        self.last_seen[slots[ok]] = np.maximum(self.last_seen[slots[ok]], np.asarray(ts)[ok])
        return slots, new, evicted

    def _insert(self, keys: np.ndarray) -> np.ndarray:
        out, reused = kernels.insert(self.keys, keys)
        self.tombs -= reused
        self.size += len(keys)
        return out

    # -- removal ----------------------------------------------------------------------
    def occupied(self) -> np.ndarray:
        return np.flatnonzero(self.keys > TOMBSTONE)

    def _evict(self, count: int) -> dict[str, np.ndarray]:
        occ = self.occupied()
        if count <= 0 or not occ.size:
            return {}
        count = min(count, occ.size)
        seen = self.last_seen[occ]
        if self.priority is None:
            score = seen
        else:  # priority first; recency (scaled into [0, 1)) breaks ties: one O(n) partition
            span = float(seen.max() - seen.min()) + 1.0
            score = self.priority(occ).astype(np.float64) + (seen - seen.min()) / span
        victims = occ[np.argpartition(score, count - 1)[:count]] if count < occ.size else occ
        self.evicted += count
        return self.remove(victims)

    def expire(self, cutoff: float) -> dict[str, np.ndarray]:
        """Remove entries last seen before `cutoff` (packet time); return their rows."""
        if not self.size:
            return {}
        return self.remove(np.flatnonzero(self.last_seen < cutoff))

    def remove(self, victims: np.ndarray) -> dict[str, np.ndarray]:
        if not len(victims):
            return {}
        gone = {name: col[victims].copy() for name, col in self.cols.items()}
        gone["_key"] = self.keys[victims].copy()
        self.keys[victims] = TOMBSTONE
        self.last_seen[victims] = np.inf
        for col in self.cols.values():
            col[victims] = 0
        self.size -= len(victims)
        self.tombs += len(victims)
        return gone

    def _rebuild(self, occ: np.ndarray, nslots: int) -> None:
        """Re-insert the rows at `occ` into fresh arrays of `nslots` slots."""
        saved_keys, saved_seen = self.keys[occ], self.last_seen[occ]
        saved = {name: col[occ] for name, col in self.cols.items()}
        self._allocate(nslots)
        slots = self._insert(saved_keys)
        self.last_seen[slots] = saved_seen
        for name, col in self.cols.items():
            col[slots] = saved[name]

    def stats(self) -> dict[str, int]:
        return {"entries": self.size, "capacity": self.capacity, "evicted": self.evicted}

    def nbytes(self) -> int:
        return self.keys.nbytes + self.last_seen.nbytes + sum(c.nbytes for c in self.cols.values())
