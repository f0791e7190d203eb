"""report: a key over threshold reports at most once per interval of packet time (the Gate; tune's
gate passes every evaluation); near misses; addresses and first/last times for the evidence."""

from __future__ import annotations

import numpy as np

from wirewatch.detect.count.report import (
    COOLDOWN,
    EVERY_EVALUATION,
    best_near_misses,
    dst_of,
    near,
    near_miss,
    src_of,
    times,
)
from wirewatch.detect.count.table import KeyTable


def test_due_once_per_interval_per_key():
    t = KeyTable(8, {"reported": (np.float64, 1)})
    slots, _, _ = t.upsert(np.array([10, 11], np.uint64), np.array([0.0, 0.0]))
    assert sorted(COOLDOWN.due(t, slots, 100.0, 30.0).tolist()) == sorted(slots.tolist())  # first time: both
    assert COOLDOWN.due(t, slots, 110.0, 30.0).tolist() == []  # within the interval: neither
    assert COOLDOWN.due(t, slots[:1], 130.0, 30.0).tolist() == slots[:1].tolist()  # one interval on: again
    assert COOLDOWN.due(t, slots, 131.0, 30.0).tolist() == [slots[1]]


def test_every_evaluation_gate_passes_every_key_and_still_marks_them():
    t = KeyTable(8, {"reported": (np.float64, 1)})
    slots, _, _ = t.upsert(np.array([10, 11], np.uint64), np.array([0.0, 0.0]))
    assert EVERY_EVALUATION.due(t, slots, 100.0, 30.0).tolist() == slots.tolist()
    assert EVERY_EVALUATION.due(t, slots, 110.0, 30.0).tolist() == slots.tolist()  # within the interval too
    assert t.cols["reported"][slots].tolist() == [100.0, 100.0]  # marked when the cooldown would pass them
    assert COOLDOWN.due(t, slots, 120.0, 30.0).tolist() == []


def test_would_pass_is_what_due_returns_and_marks_nothing():
    t = KeyTable(8, {"reported": (np.float64, 1)})
    slots, _, _ = t.upsert(np.array([10, 11], np.uint64), np.array([0.0, 0.0]))
    COOLDOWN.due(t, slots[:1], 100.0, 30.0)
    for now in (110.0, 130.0):
        for gate in (COOLDOWN, EVERY_EVALUATION):
            before = t.cols["reported"].copy()
            passed = gate.would_pass(t, slots, now, 30.0)
            assert (t.cols["reported"] == before).all()  # nothing marked
            assert passed.tolist() == gate.due(t, slots, now, 30.0).tolist()
            t.cols["reported"][:] = before
    assert COOLDOWN.would_pass(t, slots, 110.0, 30.0).tolist() == [slots[1]]  # the unreported key only


def test_near_keeps_half_to_below_one_highest_first_at_most_five():
    slots = np.arange(10)
    figure = np.array([9, 10, 14, 19, 20, 25, 12, 12, 16, 11])
    got, fig = near(slots, figure, 20)
    assert fig.tolist() == [19, 16, 14, 12, 12]  # 10/20 is in, 9/20 and >= 20 are not; ties by slot
    assert got.tolist() == [3, 8, 2, 6, 7]


def test_near_miss_entry_and_text():
    e = near_miss("port_scan", "10.0.0.9", 14, 20, "ports", 10.0, dest_ip="10.0.0.2")
    assert e == {"detector": "port_scan", "src_ip": "10.0.0.9", "dest_ip": "10.0.0.2", "figure": 14,
                 "threshold": 20, "fraction": 0.7, "unit": "ports", "window": 10.0,
                 "text": "10.0.0.9: 14 of 20 ports in 10 s"}
    assert "dest_port" not in e
    short = near_miss("port_scan", "10.0.0.9", 14, 20, "ports", 10.0, dest_ip="10.0.0.2")
    slow = near_miss("port_scan", "10.0.0.9", 14, 25, "ports", 120.0, dest_ip="10.0.0.2")
    assert best_near_misses([slow, short]) == [short]  # one key once, at its highest fraction


def test_addresses_and_times_for_evidence():
    t = KeyTable(4, {"src_hi": (np.uint64, 1), "src_lo": (np.uint64, 1), "dst_hi": (np.uint64, 1),
                     "dst_lo": (np.uint64, 1)})
    (slot,), _, _ = t.upsert(np.array([5], np.uint64), np.array([0.0]))
    t.cols["src_lo"][slot] = (0xFFFF << 32) | 0x0A000001
    t.cols["dst_hi"][slot], t.cols["dst_lo"][slot] = 0xFD00 << 48, 9
    assert (src_of(t, slot), dst_of(t, slot)) == ("10.0.0.1", "fd00::9")
    assert times(1.5, 2.25) == {"first_seen": "1970-01-01T00:00:01.500000+0000",
                                "last_seen": "1970-01-01T00:00:02.250000+0000"}
