"""A bounded hash table held in numpy arrays, updated a whole batch of keys at a time.

Detector state is keyed by things an attacker chooses (addresses, ports), so every map
has a hard capacity: when full, the least valuable entries are evicted and counted. Value
is a per-table priority (e.g. how many probes a scanner has made), then recency: a flood
of one-packet random sources evicts its own kind first, not the real scanner in it.
Staleness is expiry's job, not eviction's.

Keys are 64-bit hashes of the fields that make the key; the fields themselves are kept in
"label" columns so alerts can name the addresses. Entries live in dense rows (the
"slots" callers index columns with; at most `capacity`, freed rows reused), and a
separate linear-probing index maps key -> row. Keeping the index apart
means its spare room (it stays under half full for short probe runs) costs 12 bytes a
slot (the key and a 32-bit row) instead of a whole row of columns, and re-indexing never moves the columns.
Removal (expiry, eviction) leaves tombstones in the index that lookups skip and inserts
reuse; the index is rebuilt only when live entries plus tombstones pass three quarters.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import DTypeLike

from . import kernels
from .kernels import EMPTY, TOMBSTONE

INITIAL_SLOTS = 1024  # index slots at first; the index grows by doubling up to max_slots
EVICT_FRACTION = 4  # when full, free a quarter of the table at once: eviction is O(n), so do it rarely
ROW = np.int32  # row numbers and index slots: half the bytes of int64 per row and per slot
MAX_ROWS = 1 << 30  # so that the index (twice the capacity, a power of two) numbers its slots in an int32
Column = tuple[DTypeLike, "int | tuple[int, ...]"]  # (dtype, width per row: 1, w or (w1, w2))
Schema = Mapping[str, Column]


LAZY_BYTES = 64 * 1024  # arrays from this size on get pages of their own, faulted in only where written


def lazy_zeros(shape: int | tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
    """np.zeros whose pages the kernel maps only where they are first written: a table's
    columns are allocated for its whole capacity and mostly never touched. np.zeros gives
    that only while the allocator maps big blocks on their own; since native.keep_heap they
    come from the heap (zeroed there, every page touched and resident). An anonymous mapping
    keeps them lazy whatever the allocator does."""
    dt = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if nbytes < LAZY_BYTES:
        return np.zeros(shape, dt)
    return np.frombuffer(mmap.mmap(-1, nbytes), dt).reshape(shape)


def _lowest(score: np.ndarray, seen: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` (below len(score)) lowest scores; among those tied at the cut,
    the least recently seen. Two O(n) partitions, whatever the score's units (a fraction of a
    threshold as well as a count: recency added to the score would outweigh a fraction)."""
    cut = np.partition(score, count - 1)[count - 1]
    below = np.flatnonzero(score < cut)
    tied = np.flatnonzero(score == cut)
    need = count - len(below)  # >= 1: the cut is the count-th lowest
    return np.concatenate([below, tied[np.argpartition(seen[tied], need - 1)[:need]]])


def _next_pow2(n: int) -> int:
    return 1 << max(4, int(n - 1).bit_length())


class KeyTable:
    """uint64 key -> row of columns; capacity-bounded, evicting the lowest priority first."""

    def __init__(self, capacity: int, columns: Schema | None = None,
                 priority: Callable[[np.ndarray], np.ndarray] | None = None, reports: tuple[str, ...] | None = None):
        """`reports`: the columns removal (expiry, eviction) hands back; None = all of them."""
        self.capacity = max(1, int(capacity))
        if self.capacity > MAX_ROWS:
            raise ValueError(f"KeyTable: capacity {self.capacity} above {MAX_ROWS} (rows and index slots are int32)")
        self.priority = priority
        self.reports = reports
        self.max_slots = _next_pow2(self.capacity * 2)
        self.schema = dict(columns or {})
        self.size = 0
        self.evicted = 0
        # Rows are allocated for the whole capacity up front with lazy_zeros, which the OS
        # maps lazily: only rows ever used (below the high-water mark `used`) cost memory,
        # and the table never copies its columns to grow.
        self.used = 0
        self.keys = lazy_zeros(self.capacity, np.uint64)  # per row; EMPTY on free rows
        self.last_seen = lazy_zeros(self.capacity, np.float64)  # per row; inf on freed rows: expiry never picks them
        self.slot_of = lazy_zeros(self.capacity, ROW)  # each row's index slot
        self.cols: dict[str, np.ndarray] = {name: self._alloc(self.capacity, dt, w) for name, (dt, w) in self.schema.items()}
        self.free = lazy_zeros(self.capacity, ROW)  # stack of freed rows below `used`, popped from the end
        self.nfree = 0
        self._reindex(min(self.max_slots, INITIAL_SLOTS))

    @staticmethod
    def _alloc(n: int, dtype: DTypeLike, width: int | tuple[int, ...]) -> np.ndarray:
        """A column: one value per row, or a (width,) / (w1, w2) block per row."""
        shape = (n,) if width == 1 else (n, *np.atleast_1d(width))
        return lazy_zeros(shape, dtype)

    def _take_rows(self, n: int) -> np.ndarray:
        """n free rows: recently freed ones first, then never-used ones above `used`."""
        recycled = min(n, self.nfree)
        rows = np.concatenate([self.free[self.nfree - recycled:self.nfree][::-1],
                               np.arange(self.used, self.used + n - recycled)])
        self.nfree -= recycled
        self.used += n - recycled
        return rows

    def _reindex(self, nslots: int) -> None:
        """A fresh index of `nslots` slots holding every live row (sweeps out tombstones)."""
        self.nslots = nslots
        self.index_keys = np.zeros(nslots, np.uint64)
        self.index_rows = np.zeros(nslots, ROW)
        self.tombs = 0
        occ = self.occupied()
        slots, _ = kernels.insert(self.index_keys, self.keys[occ])
        self.index_rows[slots] = occ
        self.slot_of[occ] = slots

    def _make_room(self, n_new: int) -> None:
        """Keep the index under half full counting tombstones: grow it by doubling up to
        max_slots, else sweep the tombstones out."""
        need = self.size + self.tombs + n_new
        target = self.nslots
        while need > target // 2 and target < self.max_slots:
            target *= 2
        if target != self.nslots or need > (self.nslots * 3) // 4:
            self._reindex(target)

    # -- lookup / insert --------------------------------------------------------------
    def find(self, keys: np.ndarray) -> np.ndarray:
        """Row of each key, -1 where absent."""
        return kernels.find(self.index_keys, keys, self.index_rows)

    def upsert(self, keys: np.ndarray, ts: np.ndarray,
               weight: np.ndarray | Callable[[], np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Find or insert unique keys; set last_seen. Returns (slots, is_new, evicted rows).

        When full, the lowest-priority entries make room for the new keys. If the new keys
        alone would fill the room that frees (3/4 of the table and more), the established
        entries and the new keys compete: the best `capacity` of both by priority (for a
        new key its `weight`, in the priority's units, e.g. packets in this batch; a
        callable is only called then), then recency, are kept and the rest are counted as
        evicted (new keys that lose get no slot). Evicting the whole table instead let a
        batch of one-packet keys push out the heaviest entry (a SYN flood victim's host
        key under a port scan of 49,000 ports: its count restarted). A table without a
        priority keeps the newest: the new keys, the heaviest first.
        """
        keys = np.asarray(keys, np.uint64)
        # the common case in one pass: no eviction and no re-index can be needed for what is absent
        limit = self.nslots // 2 if self.nslots < self.max_slots else (self.nslots * 3) // 4
        max_new = min(self.capacity - self.size, limit - self.size - self.tombs)
        slots, new, done = kernels.upsert(self.index_keys, self.index_rows, self.keys, self.slot_of, self.free,
                                          self.last_seen, keys, np.broadcast_to(np.asarray(ts, np.float64), keys.shape),
                                          self.nfree, self.used, max_new)
        if done is not None:
            n_new, reused, self.nfree, self.used = done
            self.size += n_new
            self.tombs -= reused
            return slots, new, {}
        new = slots < 0
        n_new = int(np.count_nonzero(new))
        evicted: dict[str, np.ndarray] = {}
        if n_new and self.size + n_new > self.capacity:
            want = self.size + n_new - self.capacity + self.capacity // EVICT_FRACTION
            if want < self.size:
                evicted = self._evict(want)
                slots = self.find(keys)
                new = slots < 0
            if self.size + int(np.count_nonzero(new)) > self.capacity:  # the new keys fill the table
                evicted, slots, new = self._compete(keys, np.broadcast_to(np.asarray(ts, np.float64), keys.shape),
                                                    slots, weight, evicted)
        if new.any():
            slots[new] = self._insert(keys[new])
        ok = slots >= 0
        fresh = slots[new]
        self.last_seen[fresh] = -np.inf
        self.last_seen[slots[ok]] = np.maximum(self.last_seen[slots[ok]], np.asarray(ts)[ok])
        return slots, new, evicted

    def _compete(self, keys: np.ndarray, ts: np.ndarray, slots: np.ndarray,
                 weight: np.ndarray | Callable[[], np.ndarray] | None, evicted: dict[str, np.ndarray]
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Keep the best `capacity` of the established entries and this batch's new keys
        (upsert); returns (evicted rows, slots: -2 for a key not stored, is_new)."""
        occ = self.occupied()
        cand = np.flatnonzero(slots < 0)
        if callable(weight):
            weight = weight()
        w = np.zeros(len(cand)) if weight is None else np.asarray(weight, np.float64)[cand]
        if self.priority is None:  # the newest are kept: every established entry goes first
            held = np.full(occ.size, -np.inf)
        else:
            held = self.priority(occ).astype(np.float64)
        score = np.r_[held, w]
        recency = np.r_[self.last_seen[occ], ts[cand]]
        order = np.lexsort((-recency, -score))  # best first: highest score, then most recent
        lose = order[self.capacity:]
        old = occ[lose[lose < occ.size]]
        drop = cand[lose[lose >= occ.size] - occ.size]
        self.evicted += len(old) + len(drop)
        gone = self.remove(old)
        if evicted and gone:
            gone = {k: np.concatenate([evicted[k], gone[k]]) for k in gone}
        elif evicted:
            gone = evicted
        new = slots < 0
        new[drop] = False
        slots = self.find(keys)  # an established key of this batch may have lost too
        slots[~new & (slots < 0)] = -2  # not stored: callers must ignore negative slots
        return gone, slots, new

    def _insert(self, keys: np.ndarray) -> np.ndarray:
        """Rows for absent, distinct keys (room is made here; the caller keeps size <= capacity)."""
        n = len(keys)
        self._make_room(n)
        rows = self._take_rows(n)
        slots, reused = kernels.insert(self.index_keys, keys)
        self.index_rows[slots] = rows
        self.slot_of[rows] = slots
        self.keys[rows] = keys
        self.tombs -= reused
        self.size += n
        return rows

    # -- removal ----------------------------------------------------------------------
    def occupied(self) -> np.ndarray:
        return np.flatnonzero(self.keys[:self.used] != EMPTY)

    def _evict(self, count: int) -> dict[str, np.ndarray]:
        occ = self.occupied()
        if count <= 0 or not occ.size:
            return {}
        count = min(count, occ.size)
        if count == occ.size:
            victims = occ
        elif self.priority is None:
            victims = occ[np.argpartition(self.last_seen[occ], count - 1)[:count]]
        else:
            victims = occ[_lowest(np.asarray(self.priority(occ), np.float64), self.last_seen[occ], count)]
        self.evicted += count
        return self.remove(victims)

    def expire(self, cutoff: float, report: bool = True) -> dict[str, np.ndarray]:
        """Remove entries last seen before `cutoff` (packet time); return their rows (none
        without `report`: a caller that does not read them saves the gathers)."""
        if not self.size:
            return {}
        return self.remove(np.flatnonzero(self.last_seen[:self.used] < cutoff), report)

    def remove(self, victims: np.ndarray, report: bool = True) -> dict[str, np.ndarray]:
        """Free distinct live rows; return their `reports` columns (and keys as "_key"), or
        nothing without `report`."""
        if not len(victims):
            return {}
        gone: dict[str, np.ndarray] = {}
        if report:
            gone = {name: col[victims] for name, col in self.cols.items() if self.reports is None or name in self.reports}
            gone["_key"] = self.keys[victims]
        self.index_keys[self.slot_of[victims]] = TOMBSTONE
        self.keys[victims] = EMPTY
        self.last_seen[victims] = np.inf
        for col in self.cols.values():
            col[victims] = 0
        self.free[self.nfree:self.nfree + len(victims)] = victims
        self.nfree += len(victims)
        self.size -= len(victims)
        self.tombs += len(victims)
        return gone

    def stats(self) -> dict[str, int]:
        return {"entries": self.size, "capacity": self.capacity, "evicted": self.evicted}
