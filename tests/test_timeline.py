"""Timeline: packets per second of packet time in at most `bins` bins (widths double)."""

from __future__ import annotations

import numpy as np

from wirewatch.timeline import Timeline


def test_rates_per_second():
    t = Timeline(bins=8)
    t.add(np.array([100.2, 100.7, 101.5, 103.0]))
    assert t.rates() == [{"t": 100.0, "pps": 2.0}, {"t": 101.0, "pps": 1.0}, {"t": 102.0, "pps": 0.0},
                         {"t": 103.0, "pps": 1.0}]


def test_a_long_capture_merges_bins_and_keeps_every_packet():
    t = Timeline(bins=8)
    ts = np.arange(0.0, 40.0, 0.5) + 1000  # 80 packets over 40 s: 8 bins must become 8 s wide
    t.add(ts[:10])
    t.add(ts[10:])
    assert len(t.counts) == 8 and t.width == 8.0 and t.counts.sum() == 80
    assert sum(r["pps"] * t.width for r in t.rates()) == 80
