"""Bounded rolling windows on packet time, shared by all detectors.

Two shapes of question come up again and again:

* "how many *distinct* X did this key touch within the last W seconds?" (ports per
  scanner, hosts per sweeper, sources per victim) -> DistinctCounter;
* "how many packets / bytes / SYNs did this key send within the last W seconds, and what
  was its peak one-bucket rate?" -> WindowCounter.

Both are updated from whole batches with numpy, keep their state in capacity-bounded
KeyTables, and count what they evict. Time is always the packets' own timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import DTypeLike

from .doorkeeper import Doorkeeper
from .kernels import group, hash_cols, isin, window_add_rows, window_totals
from .report import COOLDOWN, Gate, dst_of, src_of, times, top
from .table import Column, KeyTable, Schema
from .window_util import unique_first_last

EXPIRE_STEPS = 10  # a window's state is swept every window/10 of packet time
ITEM = "_item"  # the doorkeeper's name for a DistinctCounter row's item
Labels = Mapping[str, np.ndarray]
LabelSchema = Mapping[str, DTypeLike]  # column name -> dtype (np.uint64 or np.dtype(...))
REPORT_GROWTH = 1.1  # a reported key is reported again within its interval once its figure grew by 10 %
Rank = Callable[[Mapping[str, np.ndarray]], "np.ndarray | float"]  # WindowCounter: metric totals -> worth per key


def fill_new(table: KeyTable, slots: np.ndarray, new: np.ndarray, idx: np.ndarray,
             labels: Labels | None, ts: np.ndarray) -> None:
    """Fill new entries' first_seen and labels from the rows that created them."""
    if not new.any():
        return
    s, rows = slots[new], idx[new]
    table.cols["first_seen"][s] = ts[rows]
    for name, col in (labels or {}).items():
        table.cols[name][s] = col[rows]


class Keys:
    """What a detector asks a counter about its keys (slots of its key table), by meaning
    rather than by column name: which touched keys are due for reporting (the gate), a key's
    source, destination, first and last seen, the keys whose label has a value, the top keys
    by a figure. Labels are the columns the detector declared itself (a port, a service)."""

    table: KeyTable
    gate: Gate

    def due(self, slots: np.ndarray, now: float, interval: float, inner: bool = False) -> np.ndarray:
        """Of these slots over their threshold, those due for reporting (at most once per
        `interval` of packet time, per window: `inner` is a DistinctCounter's short one)."""
        return self.gate.due(self.table, slots, now, interval, "reported_inner" if inner else "reported")

    def would_pass(self, slots: np.ndarray, now: float, interval: float) -> np.ndarray:
        """The slots `due` would return now, none marked reported (Gate.would_pass)."""
        return self.gate.would_pass(self.table, slots, now, interval)

    def due_or_grown(self, slots: np.ndarray, figure: np.ndarray, now: float, interval: float, told: str,
                     inner: bool = False) -> np.ndarray:
        """`due`, and the keys reported within their interval whose `figure` (one per slot) has
        grown by REPORT_GROWTH since their last report: the alert manager then tells the growth
        (an update of the alert, the tally when its cooldown ends) instead of the figures of the
        scan's first second. `told` names the label column remembering the figure last reported
        (declared by the detector, 0 in a new key); set here for every slot returned."""
        if not slots.size:
            return slots
        ready = self.due(slots, now, interval, inner)
        col = self.table.cols[told]
        was = col[slots]
        grown = (was > 0) & (figure >= REPORT_GROWTH * was)
        out = np.flatnonzero(isin(slots, ready) | grown)
        col[slots[out]] = figure[out]
        return slots[out]

    def key(self, slot: int) -> int:
        return int(self.table.keys[slot])

    def src(self, slot: int) -> str:
        """The key's source address (a table with ADDR_LABELS)."""
        return src_of(self.table, slot)

    def dst(self, slot: int) -> str:
        """The key's destination address (a table with ADDR_LABELS)."""
        return dst_of(self.table, slot)

    def dst_keys(self, slots: np.ndarray) -> np.ndarray:
        """The destinations of these keys hashed as classify.packets.dst_key does."""
        c = self.table.cols
        return hash_cols(c["dst_hi"][slots], c["dst_lo"][slots])

    def first_seen(self, slot: int) -> float:
        return float(self.table.cols["first_seen"][slot])

    def last_seen(self, slot: int) -> float:
        return float(self.table.last_seen[slot])

    def seen(self, slot: int) -> dict[str, str]:
        """first_seen and last_seen as the evidence gives them."""
        return times(self.table.cols["first_seen"][slot], self.table.last_seen[slot])

    def label(self, slots: np.ndarray | int, name: str) -> np.ndarray:
        """A label column (declared by the detector) of these slots."""
        return self.table.cols[name][slots]

    def set_label(self, slot: int, name: str, value: int) -> None:
        """Remember a figure of this key's own (e.g. what its last report said)."""
        self.table.cols[name][slot] = value

    def keys_where(self, name: str, value: int | np.integer) -> np.ndarray:
        """Slots whose label `name` equals `value` (O(table): only when reporting)."""
        occ = self.table.occupied()
        col = self.table.cols[name]
        return occ[col[occ] == col.dtype.type(value)]

    def occupied(self) -> np.ndarray:
        return self.table.occupied()

    @staticmethod
    def top(slots: np.ndarray, figure: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The n slots with the largest figures, largest first (ties by slot), and their figures."""
        best = top(slots, figure, n)
        return slots[best], figure[best]


class DistinctCounter(Keys):
    """Per group key: how many distinct items were seen within `window` seconds.

    Items are (group, item) pairs held with their last-seen time; a group's count goes
    up when one of its items is new and down when that item expires or is evicted.
    `hits` (per group and per item) counts observations since the entry was created: an
    entry lives while it is seen at least once per window.
    Under eviction pressure counts are lower bounds, never inflated.
    With `inner_window` (shorter than `window`) the same items also give
    `distinct_inner`, the count within the inner window: one table serves a short and a
    long window (port_scan's ordinary and slow scans).
    """

    def __init__(self, window: float, group_cap: int, item_cap: int,
                 group_labels: LabelSchema | None = None, item_labels: LabelSchema | None = None,
                 doorkeeper_bits: int = 0, inner_window: float = 0.0, gate: Gate = COOLDOWN):
        self.window = float(window)
        self.gate = gate
        self.inner_window = float(inner_window)
        self.next_inner_expire = -np.inf
        parked: dict[str, DTypeLike] = {ITEM: np.uint64, **(item_labels or {})}
        self.door = Doorkeeper(self.window, doorkeeper_bits, parked) if doorkeeper_bits else None
        gcols: dict[str, Column] = {"distinct": (np.int64, 1), "hits": (np.int64, 1), "first_seen": (np.float64, 1), "reported": (np.float64, 1)}
        gcols.update({k: (v, 1) for k, v in (group_labels or {}).items()})
        icols: dict[str, Column] = {"group": (np.uint64, 1), "hits": (np.int64, 1), "first_seen": (np.float64, 1)}
        icols.update({k: (v, 1) for k, v in (item_labels or {}).items()})
        if self.inner_window:
            gcols.update({"distinct_inner": (np.int64, 1), "reported_inner": (np.float64, 1)})
            icols["inner"] = (np.uint8, 1)
        self.next_expire = -np.inf
        self.groups = KeyTable(group_cap, gcols, priority=lambda slots: self.groups.cols["hits"][slots],
                               reports=())  # an evicted group's columns are not read: not gathered
        self.items = KeyTable(item_cap, icols, priority=self._item_priority, reports=("group", "inner"))
        self.table = self.groups
        self._members: tuple[np.ndarray, np.ndarray] | None = None  # see members()
        self._member_queries = 0

    def _item_priority(self, slots: np.ndarray) -> np.ndarray:
        """An item is worth as much as its group's distinct count (a scanner's probes)."""
        g = self.groups.find(self.items.cols["group"][slots])
        return np.where(g >= 0, self.groups.cols["distinct"][np.maximum(g, 0)], 0)

    def observe(self, gkeys: np.ndarray, items: np.ndarray, ts: np.ndarray,
                glabels: Labels | None = None, ilabels: Labels | None = None) -> np.ndarray:
        """Count this batch's (group, item) pairs; return the slots of the groups touched."""
        self._stale()
        if not len(gkeys):
            return np.zeros(0, np.int64)
        grouped = unique_first_last(gkeys)
        if self.door is not None:
            admitted, ts, parked, glabels = self.door.admit(lambda keys: self.groups.find(keys) >= 0, gkeys, ts,
                                                            {ITEM: items, **(ilabels or {})}, glabels or {}, grouped)
            if admitted is not gkeys:  # rows were parked or replayed: group what is counted
                gkeys, grouped = admitted, unique_first_last(admitted)
            items = parked.pop(ITEM)
            ilabels = parked
            if not len(gkeys):
                return np.zeros(0, np.int64)
        ug, gfirst, gidx, gcount = grouped
        gslots, gnew, _ = self.groups.upsert(ug, ts[gidx], gcount)
        self.groups.cols["hits"][gslots[gslots >= 0]] += gcount[gslots >= 0]
        fill_new(self.groups, gslots, gnew, gfirst, glabels, ts)
        ikeys = hash_cols(gkeys, items)
        ui, ifirst, iidx, icount = unique_first_last(ikeys)
        def item_worth() -> np.ndarray:  # only needed when this batch's new items fill the table
            # in _item_priority's units: the group's distinct count, with this batch's items of it
            groups, inv, per_group = np.unique(gkeys[iidx], return_inverse=True, return_counts=True)
            g = self.groups.find(groups)
            held = np.where(g >= 0, self.groups.cols["distinct"][np.maximum(g, 0)], 0)
            return (held + per_group)[inv]

        islots, inew, gone = self.items.upsert(ui, ts[iidx], item_worth)
        self._forget(gone)
        ok = islots >= 0
        self.items.cols["hits"][islots[ok]] += icount[ok]
        fill_new(self.items, islots, inew, ifirst, ilabels, ts)
        new_groups = gkeys[iidx[inew]]
        self.items.cols["group"][islots[inew]] = new_groups
        gs = self.groups.find(new_groups)
        np.add.at(self.groups.cols["distinct"], gs[gs >= 0], 1)
        if self.inner_window:
            seen = islots[ok]
            enter = seen[self.items.cols["inner"][seen] == 0]  # new, or back after leaving the inner window
            self.items.cols["inner"][enter] = 1
            self._count_inner(self.items.cols["group"][enter], +1)
        return gslots[gslots >= 0]

    def _count_inner(self, groups: np.ndarray, step: int) -> None:
        gs = self.groups.find(groups)
        np.add.at(self.groups.cols["distinct_inner"], gs[gs >= 0], step)

    def _forget(self, gone: Mapping[str, np.ndarray]) -> None:
        if gone:
            gs = self.groups.find(gone["group"])
            np.subtract.at(self.groups.cols["distinct"], gs[gs >= 0], 1)
            if self.inner_window:
                self._count_inner(gone["group"][gone["inner"] == 1], -1)

    def expire(self, now: float) -> None:
        """Drop items older than the window; runs at most every window/EXPIRE_STEPS seconds."""
        self._stale()
        if self.inner_window and now >= self.next_inner_expire:
            self.next_inner_expire = now + self.inner_window / EXPIRE_STEPS
            t = self.items
            leaving = np.flatnonzero((t.cols["inner"] == 1) & (t.last_seen < now - self.inner_window))
            t.cols["inner"][leaving] = 0
            self._count_inner(t.cols["group"][leaving], -1)
        if now < self.next_expire:
            return
        self.next_expire = now + self.window / EXPIRE_STEPS
        self._forget(self.items.expire(now - self.window))
        self.groups.expire(now - self.window, report=False)

    def find_items(self, gkeys: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Slots of existing (group, item) pairs (-1 where absent), to set item columns."""
        return self.items.find(hash_cols(gkeys, items))

    def marked(self, gslots: np.ndarray, column: str, inner: bool = False) -> np.ndarray:
        """Per group slot: its items (within the inner window if `inner`) whose `column` is
        non-zero. O(items table) per call: ask only about candidates near a threshold."""
        out = np.zeros(len(gslots), np.int64)
        if not len(gslots):
            return out
        gkeys = self.groups.keys[gslots]
        order = np.argsort(gkeys)
        ic = self.items.cols
        # the marked rows (usually few) from one pass over the column, not a gather of it at
        # every live row: a freed row's columns are zeroed (KeyTable.remove)
        occ = np.flatnonzero(ic[column][:self.items.used] != 0)
        if inner:
            occ = occ[ic["inner"][occ] == 1]
        pos = np.searchsorted(gkeys[order], ic["group"][occ])
        pos = np.minimum(pos, len(gkeys) - 1)
        hit = gkeys[order][pos] == ic["group"][occ]
        np.add.at(out, order[pos[hit]], 1)
        return out

    def items_of(self, gkey: int) -> np.ndarray:
        """Item slots that belong to one group, in slot order (O(items table))."""
        occ = self.items.occupied()
        return occ[self.items.cols["group"][occ] == np.uint64(gkey)]

    def _stale(self) -> None:
        self._members, self._member_queries = None, 0

    def members(self, slot: int, inner: bool = False) -> np.ndarray:
        """Item slots of one group (within the inner window if `inner`), in slot order. The
        first question after the items changed scans the items table; a second one builds
        an index (the items sorted by group), so reporting many groups at once costs one
        sort instead of a scan each."""
        gkey = self.groups.keys[slot]
        if self._members is None:
            self._member_queries += 1
            if self._member_queries < 2:
                items = self.items_of(int(gkey))
                return items[self.items.cols["inner"][items] == 1] if inner else items
            occ = self.items.occupied()
            groups = self.items.cols["group"][occ]
            order = np.argsort(groups, kind="stable")
            self._members = (occ[order], groups[order])
        occ, groups = self._members
        lo, hi = np.searchsorted(groups, gkey, "left"), np.searchsorted(groups, gkey, "right")
        items = occ[lo:hi]
        return items[self.items.cols["inner"][items] == 1] if inner else items

    def distinct(self, slots: np.ndarray | int, inner: bool = False) -> np.ndarray:
        """Distinct items per group within the window (the inner, short one if `inner`)."""
        return self.groups.cols["distinct_inner" if inner else "distinct"][slots]

    def over(self, slots: np.ndarray, threshold: float, inner: bool = False) -> np.ndarray:
        """The slots whose distinct count reached `threshold`."""
        return slots[self.distinct(slots, inner) >= threshold]

    def hits(self, slots: np.ndarray | int) -> np.ndarray:
        """Observations per group since its entry was made."""
        return self.groups.cols["hits"][slots]

    def item(self, items: np.ndarray, name: str) -> np.ndarray:
        """An item label (declared by the detector) of these item slots."""
        return self.items.cols[name][items]

    def item_hits(self, items: np.ndarray) -> int:
        """Observations of these items, together."""
        return int(self.items.cols["hits"][items].sum())

    def mark(self, gkeys: np.ndarray, items: np.ndarray, name: str) -> None:
        """Set the item label `name` to 1 on the existing (group, item) pairs given."""
        slots = self.find_items(gkeys, items)
        self.items.cols[name][slots[slots >= 0]] = 1

    def add_to_items(self, slots: np.ndarray, name: str, where: np.ndarray) -> None:
        """Add 1 to the item label `name` of these item slots (find_items) where `where` holds."""
        sel = (slots >= 0) & where
        np.add.at(self.items.cols[name], slots[sel], 1)

    def stats(self, prefix: str) -> dict[str, int]:
        out = {f"{prefix}_groups": self.groups.size, f"{prefix}_items": self.items.size,
               f"{prefix}_evicted": self.groups.evicted + self.items.evicted}
        if self.door is not None:
            out[f"{prefix}_seen_once"] = self.door.held
        return out


class WindowCounter(Keys):
    """Per key: sums of several metrics over a ring of `buckets` sub-windows of packet time.

    All metrics of a key live in one row of `counts[slot, metric, ring]` (int64 if a
    metric counts bytes, else int32), with `epoch[slot, ring]` the bucket number each ring
    cell holds, so one pass adds a whole batch and one gather reads every metric.
    """

    def __init__(self, window: float, cap: int, metrics: tuple[str, ...],
                 labels: LabelSchema | None = None, buckets: int = 10,
                 extra: Schema | None = None, doorkeeper_bits: int = 0, gate: Gate = COOLDOWN,
                 rank: Rank | None = None):
        """With `doorkeeper_bits`, a key gets an entry only when seen twice (doorkeeper.py).
        `rank`: what a key is worth when the table is full, from its metrics' totals within the
        window (per metric, an array over keys), in the units the detector compares with its
        thresholds (e.g. the largest kind over its threshold): the least worth are evicted
        first, then the least recently seen. It is read at eviction, so a reload's thresholds
        count. Default: the metrics' sum (counters whose metrics share one unit)."""
        self.window = float(window)
        self.gate = gate
        self.nb = int(buckets)
        self.width = self.window / self.nb
        self.metrics = metrics
        self.index = {m: i for i, m in enumerate(metrics)}
        dtype = np.int64 if any(m.startswith("bytes") for m in metrics) else np.int32
        cols: dict[str, Column] = {
            "epoch": (np.int64, self.nb), "counts": (dtype, (len(metrics), self.nb)),
            "first_seen": (np.float64, 1), "reported": (np.float64, 1)}
        cols.update({k: (v, 1) for k, v in (labels or {}).items()})
        cols.update(extra or {})  # e.g. HyperLogLog registers that must move with the entries
        self.next_expire = -np.inf
        self.rank = rank or (lambda totals: sum(totals.values()))
        # reports=(): nothing reads an evicted key's columns (its counts alone are metrics x buckets values)
        self.table = KeyTable(cap, cols, priority=self._priority, reports=())
        self.door = Doorkeeper(self.window, doorkeeper_bits, dict.fromkeys(metrics, np.int64)) if doorkeeper_bits else None

    def add(self, keys: np.ndarray, ts: np.ndarray, values: Mapping[str, np.ndarray],
            labels: Labels | None = None, grouped: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
        """Add per-packet metric values (a metric not given adds 0); return the slots of
        the keys touched. `grouped`: `group(keys, inverse=True)` when the caller has it
        already (a counter without a doorkeeper)."""
        if grouped is not None and self.door is not None:
            raise ValueError("WindowCounter.add: grouped keys and a doorkeeper do not mix")
        if self.door is not None:
            keys, ts, values, labels = self.door.admit(lambda k: self.table.find(k) >= 0, keys, ts,
                                                       {m: np.asarray(values.get(m, 0)) * np.ones(len(keys), np.int64)
                                                        for m in self.metrics}, labels or {})
        if not len(keys):
            return np.zeros(0, np.int64)
        t = self.table
        order, starts, ends, inverse = grouped if grouped is not None else group(keys, inverse=True)
        kfirst, kidx = order[starts], order[ends - 1]
        def worth() -> np.ndarray:  # in the priority's units: this batch's totals; only when new keys fill the table
            matrix = np.empty((len(keys), len(self.metrics)), np.int64)  # each column written once
            for i, name in enumerate(self.metrics):
                matrix[:, i] = values.get(name, 0)
            return self._worth(np.add.reduceat(matrix[order], starts, axis=0))

        slots, new, _ = t.upsert(keys[kfirst], ts[kidx], worth)
        fill_new(t, slots, new, kfirst, labels, ts)
        window_add_rows(t.cols["epoch"], t.cols["counts"], slots, inverse, ts, self.width,
                        [values.get(name) for name in self.metrics])
        return slots[slots >= 0]

    def _worth(self, sums: np.ndarray) -> np.ndarray:
        """`rank` of (keys, metrics) totals, as float64 per key."""
        worth = self.rank({m: sums[:, i] for i, m in enumerate(self.metrics)})
        return np.broadcast_to(np.asarray(worth, np.float64), (len(sums),))

    def _priority(self, slots: np.ndarray) -> np.ndarray:
        """The table's priority: `rank` of each key's totals within the window that ends at the
        newest bucket any key holds (a ring cell older than that window no longer counts)."""
        if not len(slots):
            return np.zeros(0)
        epoch = self.table.cols["epoch"]
        return self._worth(window_totals(epoch, self.table.cols["counts"], slots, int(epoch[slots].max())))

    def _live(self, slots: np.ndarray, now: float) -> np.ndarray:
        current = np.int64(np.floor(now / self.width))
        ep = self.table.cols["epoch"][slots]
        return (ep > current - self.nb) & (ep <= current)

    def totals(self, slots: np.ndarray, now: float, metric: str) -> np.ndarray:
        return self.all_totals(slots, now)[metric]

    def all_totals(self, slots: np.ndarray, now: float) -> dict[str, np.ndarray]:
        """Every metric's total within the window, in one pass."""
        sums = window_totals(self.table.cols["epoch"], self.table.cols["counts"], slots, int(np.floor(now / self.width)))
        return {m: sums[:, i] for i, m in enumerate(self.metrics)}

    def peak(self, slots: np.ndarray, now: float, metric: str) -> np.ndarray:
        """Highest single-bucket count within the window (a rate per bucket width)."""
        return (self.table.cols["counts"][slots, self.index[metric]] * self._live(slots, now)).max(axis=1)

    def expire(self, now: float) -> None:
        if now < self.next_expire:
            return
        self.next_expire = now + self.window / EXPIRE_STEPS
        self.table.expire(now - self.window, report=False)

    def stats(self, prefix: str) -> dict[str, int]:
        out = {f"{prefix}_keys": self.table.size, f"{prefix}_evicted": self.table.evicted}
        if self.door is not None:
            out[f"{prefix}_seen_once"] = self.door.held
        return out
