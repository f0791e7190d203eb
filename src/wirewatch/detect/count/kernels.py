"""The loops every detector's state runs through: hash rows into keys, group equal keys,
find / insert keys in an open-addressing table, add to and sum rolling-window ring cells,
update HyperLogLog registers and the doorkeeper's memory.

They are the measured hot path (README "Benchmarks"), so they run compiled
(`native/kernels.c`, built by `pip install`) when that extension is available. The numpy
versions here are the reference: they give the same keys, the same groups in the same
order and the same lookups (inserted keys may land in other free slots), and are used
when the extension is not built or when WIREWATCH_PURE_NUMPY=1; the tests compare the two.
"""

from __future__ import annotations

import numpy as np

from ... import native

_compiled = native.load("_kernels")
COMPILED = _compiled is not None
EMPTY = np.uint64(0)
TOMBSTONE = np.uint64(1)  # a removed entry: probing continues past it, inserts may reuse it

_K1 = np.uint64(0xBF58476D1CE4E5B9)
_K2 = np.uint64(0x94D049BB133111EB)
_K3 = np.uint64(0x9E3779B97F4A7C15)
_SEED = 0x2545F4914F6CDD1D
MAX_COMPILED_COLS = 8  # native/kernels.c MAX_COLS
_S30, _S27, _S31, _S29 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(29)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a fast, well-distributed 64-bit mixing function."""
    x = (x ^ (x >> _S30)) * _K1
    x = (x ^ (x >> _S27)) * _K2
    return x ^ (x >> _S31)


def hash_cols(*cols: np.ndarray) -> np.ndarray:
    """Combine integer columns into one uint64 key per row (never EMPTY or TOMBSTONE)."""
    arrays = [np.ascontiguousarray(c) for c in cols]
    if _compiled is not None and len(arrays) <= MAX_COMPILED_COLS and all(a.dtype.kind in "biu" for a in arrays):
        out = np.empty(len(arrays[0]), np.uint64)
        _compiled.hash_cols(out, *arrays)
        return out
    h = np.full(len(arrays[0]), _SEED, dtype=np.uint64)
    for c in arrays:
        h = (h ^ c.astype(np.uint64)) * _K3
        h ^= h >> _S29
    h = _mix64(h)
    h[h <= TOMBSTONE] += np.uint64(2)
    return h


def group(keys: np.ndarray, inverse: bool = False) -> tuple[np.ndarray, ...]:
    """Group equal keys: (order, starts, ends[, inverse]). Groups come in order of first
    occurrence and rows keep their order within a group, so group j's rows are
    order[starts[j]:ends[j]], `np.add.reduceat(values[order], starts)` sums a column
    per distinct key, and inverse[i] is row i's group."""
    keys = np.ascontiguousarray(keys, np.uint64)
    n = len(keys)
    inv = np.empty(n, np.int64) if inverse else None
    if _compiled is not None:
        order = np.empty(n, np.int64)
        bounds = np.empty(n + 1, np.int64)
        g = _compiled.group(keys, order, bounds, inv)
        return (order, bounds[:g], bounds[1:g + 1]) + ((inv,) if inv is not None else ())
    if not n:
        empty = np.zeros(0, np.int64)
        return (empty, empty, empty) + ((empty,) if inverse else ())
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    ends = np.r_[starts[1:], n]
    by_first = np.argsort(order[starts], kind="stable")  # sorted runs -> first-occurrence order
    sizes = (ends - starts)[by_first]
    new_ends = np.cumsum(sizes)
    new_starts = new_ends - sizes
    order = order[np.repeat(starts[by_first] - new_starts, sizes) + np.arange(n)]
    if inv is not None:
        inv[order] = np.repeat(np.arange(len(sizes)), sizes)
        return order, new_starts, new_ends, inv
    return order, new_starts, new_ends


def unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys in order of first occurrence, each one's first and last row, and how
    many rows hold it: group's groups without the rows' order (compiled: one hash pass, no
    counting sort and no gathers through the order)."""
    keys = np.ascontiguousarray(keys, np.uint64)
    if _compiled is not None:
        n = len(keys)
        uk, first, last, counts = np.empty(n, np.uint64), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
        g = _compiled.unique(keys, uk, first, last, counts)
        return uk[:g], first[:g], last[:g], counts[:g]
    order, starts, ends = group(keys)
    return keys[order[starts]], order[starts], order[ends - 1], ends - starts


def isin(keys: np.ndarray, of: np.ndarray) -> np.ndarray:
    """np.isin(keys, of) for uint64 keys: one hash-set pass compiled (numpy sorts both)."""
    keys = np.ascontiguousarray(keys, np.uint64)
    of = np.ascontiguousarray(of, np.uint64)
    if _compiled is not None:
        out = np.empty(len(keys), np.bool_)
        _compiled.isin(keys, of, out)
        return out
    return np.isin(keys, of)


def window_add(epoch: np.ndarray, counts: np.ndarray, slots: np.ndarray, buckets: np.ndarray,
               values: np.ndarray) -> None:
    """Add each row's metric values (values[i, :]) to the ring cell (slots[i], buckets[i] %
    nb) of counts[slot, metric, ring]; epoch[slot, ring] says which bucket a cell holds. A
    cell holding an older bucket is cleared first; rows older than their cell are dropped;
    rows with a negative slot are skipped."""
    slots = np.ascontiguousarray(slots, np.int64)
    buckets = np.ascontiguousarray(buckets, np.int64)
    values = np.ascontiguousarray(values, np.int64)
    if _compiled is not None:
        _compiled.window_add(epoch, counts, slots, buckets, values)
        return
    ok = slots >= 0
    s, b, v = slots[ok], buckets[ok], values[ok]
    moved_slots, moved_rings, keep = _advance_ring_cells(epoch, s, b)
    counts[moved_slots, :, moved_rings] = 0
    ring = b % epoch.shape[1]
    for j in range(counts.shape[1]):
        np.add.at(counts[:, j, :], (s[keep], ring[keep]), v[keep, j].astype(counts.dtype))


def window_add_rows(epoch: np.ndarray, counts: np.ndarray, slots: np.ndarray, inverse: np.ndarray, ts: np.ndarray,
                    width: float, values: list[np.ndarray | None]) -> None:
    """window_add of rows as WindowCounter.add holds them: row i adds values[j][i] to metric j
    (None: the metric adds 0) in the ring cell of its key's slot (slots[inverse[i]]) and of
    bucket floor(ts[i] / width). Compiled, no per-row slot, bucket or value matrix is made."""
    inverse = np.ascontiguousarray(inverse, np.int64)
    ts = np.ascontiguousarray(ts, np.float64)
    if _compiled is not None:
        cols = tuple(None if v is None else np.ascontiguousarray(np.broadcast_to(v, inverse.shape), np.int64)
                     for v in values)
        _compiled.window_add_rows(epoch, counts, np.ascontiguousarray(slots, np.int64), inverse, ts, float(width), cols)
        return
    matrix = np.empty((len(inverse), len(values)), np.int64)  # each column written once
    for i, v in enumerate(values):
        matrix[:, i] = 0 if v is None else v
    window_add(epoch, counts, np.asarray(slots, np.int64)[inverse], np.floor(ts / width).astype(np.int64), matrix)


def _advance_ring_cells(epoch: np.ndarray, slots: np.ndarray, buckets: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numpy side of a ring update: each cell (slot, bucket % nb) the rows touch moves
    to the newest bucket among its rows and its own epoch[slot, ring]. Returns the slots
    and rings of the cells that moved (their contents must be cleared) and which rows
    belong to their cell's bucket (older rows are dropped)."""
    nb = epoch.shape[1]
    cells, inv = np.unique(slots * nb + buckets % nb, return_inverse=True)
    cs, cr = cells // nb, cells % nb
    newest = epoch[cs, cr].copy()
    np.maximum.at(newest, inv, buckets)
    moved = epoch[cs, cr] != newest
    epoch[cs, cr] = newest
    return cs[moved], cr[moved], buckets == newest[inv]


def window_totals(epoch: np.ndarray, counts: np.ndarray, slots: np.ndarray, current: int) -> np.ndarray:
    """(k, metrics) sums of each slot's ring cells whose bucket is within the window that
    ends at bucket `current` (the nb buckets up to and including it)."""
    slots = np.ascontiguousarray(slots, np.int64)
    out = np.empty((len(slots), counts.shape[1]), np.int64)
    if _compiled is not None:
        _compiled.window_totals(epoch, counts, slots, int(current), out)
        return out
    ep = epoch[slots]
    live = (ep > current - epoch.shape[1]) & (ep <= current)
    out[:] = (counts[slots] * live[:, None, :]).sum(axis=2)
    return out


def hll_add(regs: np.ndarray, epoch: np.ndarray, slots: np.ndarray, hashes: np.ndarray, epochs: np.ndarray) -> None:
    """Windowed HyperLogLog update (detect/count/hll.py): half-window e uses register set e % 2
    of regs[slot] (2 x M registers), cleared when it last held an earlier half-window (rows
    older than their set's are dropped); the register is the hash's low log2(M) bits, the
    rank the leading zeros of the rest + 1. Rows with a negative slot are skipped."""
    slots = np.ascontiguousarray(slots, np.int64)
    hashes = np.ascontiguousarray(hashes, np.uint64)
    epochs = np.ascontiguousarray(epochs, np.int64)
    if _compiled is not None:
        _compiled.hll_add(regs, epoch, slots, hashes, epochs)
        return
    ok = slots >= 0
    slots, hashes, epochs = slots[ok], hashes[ok], epochs[ok]
    m = regs.shape[1] // 2
    shift = m.bit_length() - 1
    moved_slots, moved_halves, keep = _advance_ring_cells(epoch, slots, epochs)
    for part in (0, 1):  # zero the register sets that move on to a later half-window
        regs[moved_slots[moved_halves == part], part * m:(part + 1) * m] = 0
    slots, hashes, h = slots[keep], hashes[keep], epochs[keep] % 2
    rest = hashes >> np.uint64(shift)
    bits = np.zeros(len(rest), np.int64)
    nz = rest > 0
    approx = np.floor(np.log2(rest[nz].astype(np.float64))).astype(np.int64) + 1
    approx -= rest[nz] < (np.uint64(1) << (approx - 1).astype(np.uint64))  # float log2 can round up
    bits[nz] = approx
    rank = np.maximum(64 - shift + 1 - bits, 1).astype(np.uint8)
    np.maximum.at(regs, (slots, h * m + (hashes & np.uint64(m - 1)).astype(np.int64)), rank)


def find(table: np.ndarray, keys: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
    """Slot of each key in a linear-probing table of 2^k uint64 slots (or values[slot]
    when `values` is given), -1 where absent."""
    keys = np.ascontiguousarray(keys, np.uint64)
    slots = np.empty(len(keys), np.int64)
    if _compiled is not None:
        _compiled.find(table, keys, slots, values)
        return slots
    slots[:] = -1
    mask = len(table) - 1
    pending = np.arange(len(keys))
    pos = (keys & np.uint64(mask)).astype(np.int64)
    step = 0
    while pending.size and step < len(table):
        p = (pos[pending] + step) & mask
        k = table[p]
        hit = k == keys[pending]
        slots[pending[hit]] = p[hit]
        pending = pending[~hit & (k != EMPTY)]
        step += 1
    if values is not None:
        found = slots >= 0
        slots[found] = values[slots[found]]
    return slots


def insert(table: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Insert absent, distinct keys (the table is kept under 3/4 full by its owner);
    return their slots and how many tombstones they reused. Slots may differ between the
    compiled loop (one key after another) and numpy (all keys probe together, the last
    write to a contested slot wins); both are deterministic."""
    keys = np.ascontiguousarray(keys, np.uint64)
    out = np.empty(len(keys), np.int64)
    if _compiled is not None:
        return out, _compiled.insert(table, keys, out)
    mask = len(table) - 1
    reused = 0
    pending = np.arange(len(keys))
    step = np.zeros(len(keys), np.int64)
    pos = (keys & np.uint64(mask)).astype(np.int64)
    while pending.size:
        p = (pos[pending] + step[pending]) & mask
        free = table[p] <= TOMBSTONE
        cand, pc = pending[free], p[free]
        was_tomb = table[pc] == TOMBSTONE
        table[pc] = keys[cand]
        won = table[pc] == keys[cand]
        out[cand[won]] = pc[won]
        reused += int(np.count_nonzero(was_tomb[won]))
        lost = np.concatenate([pending[~free], cand[~won]])
        step[lost] += 1
        pending = lost
    return out, reused


def upsert(index_keys: np.ndarray, index_rows: np.ndarray, row_keys: np.ndarray, slot_of: np.ndarray,
           free: np.ndarray, last_seen: np.ndarray, keys: np.ndarray, ts: np.ndarray, nfree: int, used: int,
           max_new: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int] | None]:
    """KeyTable.upsert's find-or-insert of distinct keys in one pass (detect/count/table.py):
    each key's row through the index (index_rows[slot]), else a new row (free[nfree-1],
    free[nfree-2], ... then used, used + 1, ...) inserted into the index in key order;
    last_seen is the newer of its own and ts (a new row's is ts). Returns (rows, is_new,
    (new, tombstones reused, nfree, used)); with more than max_new absent keys nothing
    changes and the last part is None (rows then holds the found rows, -1 absent)."""
    keys = np.ascontiguousarray(keys, np.uint64)
    ts = np.ascontiguousarray(ts, np.float64)
    rows = np.empty(len(keys), np.int64)
    is_new = np.zeros(len(keys), np.bool_)
    if _compiled is not None:
        done = _compiled.upsert(index_keys, index_rows, row_keys, slot_of, free, last_seen, keys, ts, rows, is_new,
                                int(nfree), int(used), int(max_new))
        return rows, is_new, done
    rows[:] = find(index_keys, keys, index_rows)
    is_new[:] = rows < 0
    n_new = int(np.count_nonzero(is_new))
    if n_new > max_new or n_new > nfree + len(row_keys) - used:
        return rows, np.zeros(len(keys), np.bool_), None
    old = rows[~is_new]
    last_seen[old] = np.maximum(last_seen[old], ts[~is_new])
    recycled = min(n_new, nfree)
    new_rows = np.concatenate([free[nfree - recycled:nfree][::-1], np.arange(used, used + n_new - recycled)])
    slots, reused = insert(index_keys, keys[is_new])
    index_rows[slots] = new_rows
    slot_of[new_rows] = slots
    row_keys[new_rows] = keys[is_new]
    last_seen[new_rows] = ts[is_new]
    rows[is_new] = new_rows
    return rows, is_new, (n_new, reused, nfree - recycled, used + n_new - recycled)


def door_admit(door_key: np.ndarray, door_ts: np.ndarray, keys: np.ndarray, ts: np.ndarray, window: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The doorkeeper's direct-mapped memory (detect/count/doorkeeper.py) for candidate rows of
    distinct keys: a key whose slot holds it from within `window` comes back (its parked
    time is returned, the slot is freed); any other key parks its row there. Returns
    (slot, back, back_ts) per row. Two keys of one batch on one slot: the compiled loop
    takes rows in order, numpy checks all rows before writing any (the later row parks
    in both)."""
    keys = np.ascontiguousarray(keys, np.uint64)
    ts = np.ascontiguousarray(ts, np.float64)
    k = len(keys)
    slot, back, back_ts = np.empty(k, np.int64), np.empty(k, bool), np.zeros(k, np.float64)
    if _compiled is not None:
        _compiled.door_admit(door_key, door_ts, keys, ts, float(window), slot, back, back_ts)
        return slot, back, back_ts
    slot[:] = keys & np.uint64(len(door_key) - 1)
    back[:] = (door_key[slot] == keys) & (ts - door_ts[slot] <= window)
    back_ts[back] = door_ts[slot[back]]
    door_key[slot[back]] = 0
    park = ~back
    door_key[slot[park]], door_ts[slot[park]] = keys[park], ts[park]
    return slot, back, back_ts
