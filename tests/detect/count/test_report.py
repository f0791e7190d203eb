"""report: a key over threshold reports at most once per interval of packet time; addresses and
first/last times for the evidence."""

from __future__ import annotations

import numpy as np

from wirewatch.detect.count.report import dst_of, due, src_of, times
from wirewatch.detect.count.table import KeyTable


def test_due_once_per_interval_per_key():
    t = KeyTable(8, {"reported": (np.float64, 1)})
    slots, _, _ = t.upsert(np.array([10, 11], np.uint64), np.array([0.0, 0.0]))
    assert sorted(due(t, slots, 100.0, 30.0).tolist()) == sorted(slots.tolist())  # first time: both
    assert due(t, slots, 110.0, 30.0).tolist() == []  # within the interval: neither
    assert due(t, slots[:1], 130.0, 30.0).tolist() == slots[:1].tolist()  # one interval on: again
    assert due(t, slots, 131.0, 30.0).tolist() == [slots[1]]


def test_addresses_and_times_for_evidence():
    t = KeyTable(4, {"src_hi": (np.uint64, 1), "src_lo": (np.uint64, 1), "dst_hi": (np.uint64, 1),
                     "dst_lo": (np.uint64, 1)})
    (slot,), _, _ = t.upsert(np.array([5], np.uint64), np.array([0.0]))
    t.cols["src_lo"][slot] = (0xFFFF << 32) | 0x0A000001
    t.cols["dst_hi"][slot], t.cols["dst_lo"][slot] = 0xFD00 << 48, 9
    assert (src_of(t, slot), dst_of(t, slot)) == ("10.0.0.1", "fd00::9")
    assert times(1.5, 2.25) == {"first_seen": "1970-01-01T00:00:01.500000+0000",
                                "last_seen": "1970-01-01T00:00:02.250000+0000"}
