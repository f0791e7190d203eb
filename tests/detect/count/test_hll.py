"""HyperLogLog per table row over a window (syn_flood's distinct sources)."""

from __future__ import annotations

import numpy as np
from crafted import T0

from wirewatch.detect.count import hll
from wirewatch.detect.count.kernels import hash_cols
from wirewatch.detect.count.table import KeyTable


def test_estimates_distinct_sources_within_15_percent_and_forgets_outside_the_window():
    t = KeyTable(4, hll.COLUMNS)
    counter = hll.WindowedHLL(10.0)
    slots, _, _ = t.upsert(np.array([7], np.uint64), np.array([T0]))
    for n in (5, 50, 5000, 100000):
        t.cols["hll"][:] = 0
        src = hash_cols(np.arange(n, dtype=np.uint64) + 1000)
        counter.add(t.cols, np.repeat(slots, n), src, np.full(n, T0))
        est = counter.estimate(t.cols, slots, T0)[0]
        assert abs(est - n) <= max(1, 0.15 * n), (n, est)
    assert counter.estimate(t.cols, slots, T0 + 25)[0] == 0  # outside the window
