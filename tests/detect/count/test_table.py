"""KeyTable: a capped uint64 -> row map in numpy columns, checked against a dict model. Keys 0 and 1
mark empty and removed index slots (kernels.EMPTY, TOMBSTONE): real keys are hashes, tests use >= 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wirewatch.detect.count.table import INITIAL_SLOTS, KeyTable
from wirewatch.native import load

keys_st = st.lists(st.lists(st.integers(2, 5000), min_size=1, max_size=60, unique=True), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(keys_st)
def test_rows_stay_with_their_keys_while_the_index_grows(batches):
    t = KeyTable(10_000, {"v": (np.int64, 1)})
    model: dict[int, int] = {}
    for n, batch in enumerate(batches):
        keys = np.array(batch, np.uint64)
        slots, new, evicted = t.upsert(keys, np.full(len(keys), float(n)))
        assert not evicted and new.tolist() == [k not in model for k in batch]
        t.cols["v"][slots] += keys.astype(np.int64)
        for k in batch:
            model[k] = model.get(k, 0) + k
    everything = np.array(sorted(model), np.uint64)
    rows = t.find(everything)
    assert (rows >= 0).all() and len(set(rows.tolist())) == len(model) == t.size
    assert t.cols["v"][rows].tolist() == [model[int(k)] for k in everything]
    assert (t.find(np.array([5001, 9999], np.uint64)) == -1).all()


def test_flood_of_ten_times_the_cap_keeps_the_size_and_counts_evictions():
    cap = 100
    t = KeyTable(cap)
    for n in range(10):
        keys = np.arange(n * cap, (n + 1) * cap, dtype=np.uint64) + 2
        t.upsert(keys, np.full(cap, float(n)))
        assert t.size <= cap
    assert t.size + t.evicted == 10 * cap
    newest = np.arange(9 * cap, 10 * cap, dtype=np.uint64) + 2
    assert (t.find(newest) >= 0).all()  # no priority: the least recently seen went first
    assert t.nslots <= t.max_slots


def test_priority_keeps_the_valuable_entries_through_a_flood():
    cap = 64
    t = KeyTable(cap, {"hits": (np.int64, 1)}, priority=lambda rows: t.cols["hits"][rows])
    scanner = np.array([7], np.uint64)
    slots, _, _ = t.upsert(scanner, np.array([0.0]))
    t.cols["hits"][slots] = 50
    for n in range(1, 41):  # 10x the cap of one-hit keys, all more recent than the scanner
        keys = np.arange(n * 1000, n * 1000 + cap // 4, dtype=np.uint64)
        s, _, _ = t.upsert(keys, np.full(len(keys), float(n)))
        t.cols["hits"][s[s >= 0]] += 1
    assert t.find(scanner)[0] >= 0 and t.size <= cap and t.evicted > 0


def test_eviction_ranks_by_a_fractional_priority_before_recency():
    """A priority in a threshold's units (a fraction of it): 8 entries at 0.1 of it, then 56 newer
    ones at 0.001 fill the table (capacity 64) and 10 more make it evict. Every entry at 0.1 stays
    though it is the least recently seen, and the 0.001 ones go oldest first. Before, recency
    scaled into [0, 1) was added to the priority: the newest 0.001 entries (0.001 + 0.99) outranked
    the 0.1 ones seen first (0.1 + 0), which were evicted."""
    cap = 64
    t = KeyTable(cap, {"worth": (np.float64, 1)}, priority=lambda rows: t.cols["worth"][rows])
    heavy = np.arange(2, 10, dtype=np.uint64)
    s, _, _ = t.upsert(heavy, np.zeros(8))
    t.cols["worth"][s] = 0.1
    light = np.arange(100, 156, dtype=np.uint64)
    s, _, _ = t.upsert(light, np.arange(1.0, 57.0))
    t.cols["worth"][s] = 0.001
    t.upsert(np.arange(1000, 1010, dtype=np.uint64), np.full(10, 60.0))
    assert (t.find(heavy) >= 0).all() and t.evicted == 10 + cap // 4
    assert ((t.find(light) >= 0) == (np.arange(56) >= 26)).all()  # the 26 oldest went


def test_one_batch_larger_than_the_cap_keeps_the_heaviest_then_the_newest():
    t = KeyTable(4)
    keys = np.arange(2, 10, dtype=np.uint64)
    weight = np.array([1, 9, 1, 1, 9, 1, 1, 1])
    slots, _, _ = t.upsert(keys, np.arange(8.0), weight)
    kept = sorted(int(k) for k in keys[slots >= 0])
    assert kept == [3, 6, 8, 9] and t.evicted == 4 and (slots[slots < 0] == -2).all()


def test_a_batch_of_new_keys_filling_the_table_competes_with_the_entries_by_priority():
    """64 entries, one of them heavy; then one batch of 100 new one-hit keys (more than the table
    holds): the heavy entry stays with its count, the best of the rest by weight then recency fill
    the table, and every key that lost (established or new) is counted. Before, the whole table
    was evicted first, the heavy entry with it."""
    cap = 64
    t = KeyTable(cap, {"hits": (np.int64, 1)}, priority=lambda rows: t.cols["hits"][rows])
    old = np.arange(2, 2 + cap, dtype=np.uint64)
    s, _, _ = t.upsert(old, np.zeros(cap))
    t.cols["hits"][s] = 1
    t.cols["hits"][t.find(old[:1])] = 500  # the heavy one
    new = np.arange(1000, 1100, dtype=np.uint64)
    weight = np.ones(100)
    weight[:10] = 3  # ten new keys outweigh the established one-hit entries
    slots, is_new, _ = t.upsert(new, np.ones(100), weight)
    assert t.cols["hits"][t.find(old[:1])[0]] == 500
    assert (slots[:10] >= 0).all() and is_new[:10].all()
    assert t.size == cap and t.evicted == cap + 100 - cap  # what did not fit, both kinds
    kept_old = int((t.find(old) >= 0).sum())
    assert kept_old + int((slots >= 0).sum()) == cap and ((slots >= 0) == is_new).all()
    assert (slots[slots < 0] == -2).all()


def test_expire_removes_exactly_the_stale_and_rows_are_reused():
    t = KeyTable(50, {"v": (np.int64, 1)}, reports=("v",))
    keys = np.arange(2, 42, dtype=np.uint64)
    slots, _, _ = t.upsert(keys, np.arange(40.0))
    t.cols["v"][slots] = np.arange(40)
    gone = t.expire(10.0)
    assert sorted(gone["_key"].tolist()) == list(range(2, 12)) and sorted(gone["v"].tolist()) == list(range(10))
    assert t.size == 30 and (t.find(keys[:10]) == -1).all() and (t.find(keys[10:]) >= 0).all()
    again, new, _ = t.upsert(np.arange(100, 110, dtype=np.uint64), np.full(10, 50.0))
    assert new.all() and set(again.tolist()) == set(slots[:10].tolist())  # freed rows first
    assert (t.cols["v"][again] == 0).all() and t.used == 40


def test_tombstones_are_swept_so_churn_does_not_fill_the_index():
    t = KeyTable(INITIAL_SLOTS // 4)
    for n in range(50):  # churn: insert a batch, expire it, many times over
        keys = np.arange(n * 1000 + 1, n * 1000 + 1 + t.capacity, dtype=np.uint64)
        t.upsert(keys, np.full(len(keys), float(n)))
        t.expire(n + 0.5)
    assert t.size == 0 and t.tombs + t.size <= (t.nslots * 3) // 4 and t.evicted == 0


def test_remove_and_expire_without_report_free_the_same_rows_and_return_nothing():
    keys = np.arange(2, 42, dtype=np.uint64)
    tables = []
    for report in (True, False):
        t = KeyTable(100, {"v": (np.int64, 1)})
        slots, _, _ = t.upsert(keys, np.arange(40, dtype=np.float64))
        t.cols["v"][slots] = np.arange(40)
        gone = t.remove(slots[:5], report=report)
        assert (sorted(gone["v"].tolist()) == [0, 1, 2, 3, 4]) if report else gone == {}
        expired = t.expire(20.0, report=report)
        assert (sorted(expired["v"].tolist()) == list(range(5, 20))) if report else expired == {}
        tables.append(t)
    for t in tables:
        assert t.size == 20 and (t.find(keys[:20]) == -1).all() and (t.find(keys[20:]) >= 0).all()
        assert sorted(t.cols["v"][t.find(keys[20:])].tolist()) == list(range(20, 40))


LAZY_CHILD = """
import os
import numpy as np
from wirewatch import native
from wirewatch.detect.count.table import KeyTable
heap_kept = native.keep_heap()  # as the engine does: the compiled path keeps freed heap, the numpy one cannot
temporaries = [np.ones(65_536) for _ in range(60)]  # a slice's worth, freed (kept in the heap: 30 MiB free)
del temporaries
def rss_mib():  # resident now (statm), not the peak: the freed temporaries must not hide what the tables cost
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
before = rss_mib()
tables = [KeyTable(65_536, {"counts": (np.int64, (7, 5)), "v": (np.int64, 1)}) for _ in range(20)]
for t in tables:
    t.upsert(np.arange(2, 1002, dtype=np.uint64), np.zeros(1000))
print(heap_kept, rss_mib() - before)
"""


def test_columns_cost_memory_only_where_rows_are_used():
    """20 tables of 65,536 rows x 38 int64 columns (380 MiB if every page were touched), 1,000
    rows used in each: the pages of the unused rows stay unmapped, also when the heap (kept by
    native.keep_heap where the compiled path runs, as the engine keeps it) has freed memory that
    np.zeros would reuse and clear; and under the numpy reference (WIREWATCH_PURE_NUMPY=1), which
    leaves the allocator's defaults. The child runs with this process's setting."""
    heap_kept, grew = subprocess.run([sys.executable, "-c", LAZY_CHILD], capture_output=True, text=True,
                                     check=True).stdout.split()
    assert heap_kept == str(load("_kernels") is not None)
    # np.zeros columns: 10 MiB here compiled, 15 MiB numpy, 30 MiB in a bulk.pcap read
    assert float(grew) < 5
