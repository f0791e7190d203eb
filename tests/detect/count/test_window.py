"""Windowed counters on packet time, checked against brute-force models over random streams."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wirewatch.detect.count.window import DistinctCounter, WindowCounter

# (group, item, time offset) events, replayed in time order
events_st = st.lists(st.tuples(st.integers(2, 6), st.integers(0, 12), st.floats(0, 60, allow_nan=False)),
                     min_size=1, max_size=120)


def replay(counter: DistinctCounter, events, batches: int = 4) -> None:
    events = sorted(events, key=lambda e: e[2])
    for chunk in np.array_split(np.arange(len(events)), batches):
        if len(chunk):
            g, i, t = (np.array([events[k][j] for k in chunk]) for j in range(3))
            counter.observe(g.astype(np.uint64), i.astype(np.int64), t.astype(np.float64))


@settings(max_examples=80, deadline=None)
@given(events_st, st.floats(70, 120))
def test_distinct_items_per_group_within_the_window(events, now):
    window, inner = 30.0, 8.0
    c = DistinctCounter(window, 64, 1024, inner_window=inner)
    replay(c, events)
    c.expire(now)
    last: dict[tuple[int, int], float] = {}
    for g, i, t in events:
        last[g, i] = max(last.get((g, i), -1.0), t)
    for g in {e[0] for e in events}:
        slot = c.groups.find(np.array([g], np.uint64))[0]
        live = [t for (gg, _), t in last.items() if gg == g and t >= now - window]
        if not live:
            assert slot < 0  # nothing seen within the window: the group is gone
            continue
        assert c.groups.cols["distinct"][slot] == len(live)
        assert c.groups.cols["distinct_inner"][slot] == sum(t >= now - inner for t in live)
        assert len(c.items_of(g)) == len(live)



@settings(max_examples=60, deadline=None)
@given(events_st, st.sets(st.integers(0, 12)), st.floats(0, 60), st.lists(st.tuples(st.integers(2, 6), st.integers(0, 12)),
                                                                        max_size=20))
def test_marked_counts_the_live_marked_items_of_each_group(events, talked, now, later):
    """Items marked, then expired (their rows freed with the label still set) and rows reused
    by new unmarked items: marked() counts only live marked items."""
    window, inner = 30.0, 8.0
    c = DistinctCounter(window, 64, 1024, item_labels={"talked": np.uint8}, inner_window=inner)
    replay(c, events)
    groups = np.array([g for g, i, _ in events if i in talked], np.uint64)
    c.mark(groups, np.array([i for g, i, _ in events if i in talked], np.int64), "talked")
    end = max(e[2] for e in events) + now
    c.expire(end)
    if later:  # new items after the expiry take freed rows; they come unmarked
        g, i = (np.array([p[j] for p in later]) for j in range(2))
        c.observe(g.astype(np.uint64), i.astype(np.int64), np.full(len(later), end))
    last: dict[tuple[int, int], float] = {}
    for g, i, t in events:
        last[g, i] = max(last.get((g, i), -1.0), t)
    fresh = {(g, i) for g, i in later}
    slots = c.occupied()
    gkeys = c.groups.keys[slots].tolist()
    # a marked item keeps its label while it lives; seen again at `end` it is in the inner window
    kept = {(g, i): end if (g, i) in fresh else t for (g, i), t in last.items() if i in talked and t >= end - window}
    for inner_only, span in ((False, window), (True, inner)):
        want = [sum(t >= end - span for (g, _), t in kept.items() if g == k) for k in gkeys]
        assert c.marked(slots, "talked", inner_only).tolist() == want


def test_distinct_counter_bounded_under_ten_times_its_caps():
    c = DistinctCounter(60.0, 32, 128)
    scanner = np.full(40, 7, np.uint64)
    c.observe(scanner, np.arange(40), np.linspace(0, 1, 40))
    for n in range(40):  # 10x the group cap of two-item groups, a quarter of the cap at a time
        g = np.repeat(np.arange(100 + n * 8, 100 + (n + 1) * 8, dtype=np.uint64), 2)
        c.observe(g, np.tile([1, 2], 8), np.full(16, 2.0 + n))
    st_ = c.stats("x")
    assert st_["x_groups"] <= 32 and st_["x_items"] <= 128 and st_["x_evicted"] > 0
    slot = c.groups.find(np.array([7], np.uint64))[0]
    assert slot >= 0 and 0 < c.groups.cols["distinct"][slot] <= 40  # counts are lower bounds, never inflated
    assert c.groups.cols["distinct"][slot] == len(c.items_of(7))


def test_doorkeeper_gives_state_only_to_keys_seen_twice():
    c = DistinctCounter(10.0, 1000, 1000, doorkeeper_bits=12)
    once = np.arange(10, 510, dtype=np.uint64)
    c.observe(once, np.zeros(500, np.int64), np.full(500, 1.0))
    assert c.groups.size == 0 and c.stats("d")["d_seen_once"] == 500
    c.observe(np.array([10], np.uint64), np.array([1]), np.array([2.0]))
    slot = c.groups.find(np.array([10], np.uint64))[0]
    assert c.groups.cols["distinct"][slot] == 2 and c.groups.cols["first_seen"][slot] == 1.0  # the parked row counts


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 4), st.floats(0, 50, allow_nan=False), st.integers(0, 1500)),
                min_size=1, max_size=150), st.floats(0, 60))
def test_window_counter_totals_and_peak_over_the_live_buckets(events, now):
    window, buckets = 10.0, 10
    events = sorted(events, key=lambda e: e[1])
    now = max(now, events[-1][1])
    w = WindowCounter(window, 16, ("packets", "bytes"), buckets=buckets)
    keys = np.array([e[0] for e in events], np.uint64)
    ts = np.array([e[1] for e in events])
    size = np.array([e[2] for e in events], np.int64)
    w.add(keys, ts, {"packets": np.ones(len(events), np.int64), "bytes": size})
    width = window / buckets
    current = np.floor(now / width)
    for k in set(keys.tolist()):
        slot = w.table.find(np.array([k], np.uint64))
        live = [(e[1], e[2]) for e in events if e[0] == k and np.floor(e[1] / width) > current - buckets]
        totals = w.all_totals(slot, now)
        assert totals["packets"][0] == len(live) and totals["bytes"][0] == sum(b for _, b in live)
        per_bucket: dict[float, int] = {}
        for t, _ in live:
            per_bucket[np.floor(t / width)] = per_bucket.get(np.floor(t / width), 0) + 1
        assert w.peak(slot, now, "packets")[0] == max(per_bucket.values(), default=0)


def test_window_counter_bounded_and_expires_on_packet_time():
    w = WindowCounter(10.0, 16, ("packets",))
    for n in range(10):  # 10x the cap of fresh keys
        keys = np.arange(100 + n * 16, 116 + n * 16, dtype=np.uint64)
        w.add(keys, np.full(16, float(n)), {"packets": np.ones(16, np.int64)})
    assert w.stats("w") == {"w_keys": 16, "w_evicted": 144}
    w.expire(18.5)
    assert w.table.size == 16  # last seen at 9 s: inside the window at 18.5 s
    w.next_expire = -np.inf
    w.expire(19.5)
    assert w.table.size == 0


def test_the_counter_interface_answers_what_detectors_ask():
    """Keys and DistinctCounter by meaning: due (the gate), over, distinct, members (scan for the
    first question, an index after), source / destination / first and last seen, top."""
    labels = {"src_hi": np.uint64, "src_lo": np.uint64, "dst_hi": np.uint64, "dst_lo": np.uint64}
    c = DistinctCounter(10.0, 64, 512, labels, {"port": np.int64}, inner_window=5.0)
    mapped = np.uint64(0xFFFF << 32)
    groups = np.repeat(np.array([101, 102, 103], np.uint64), [6, 3, 1])
    ports = np.array([1, 2, 3, 4, 5, 6, 1, 2, 3, 9], np.int64)
    ts = np.linspace(100.0, 101.0, len(groups))
    src = mapped | groups  # 0.0.0.101 ...
    touched = c.observe(groups, ports, ts, {"src_hi": np.zeros(10, np.uint64), "src_lo": src,
                                            "dst_hi": np.zeros(10, np.uint64), "dst_lo": np.full(10, mapped | np.uint64(7))},
                        {"port": ports})
    by_key = {c.key(s): int(s) for s in touched}
    assert c.distinct(np.array([by_key[101], by_key[102]])).tolist() == [6, 3]
    assert c.over(touched, 3).tolist() == [by_key[101], by_key[102]]
    assert c.due(c.over(touched, 3), 101.0, 10.0).tolist() == [by_key[101], by_key[102]]
    assert c.due(c.over(touched, 3), 102.0, 10.0).tolist() == []  # within the cooldown
    assert c.due(c.over(touched, 3, inner=True), 102.0, 5.0, inner=True).size == 2  # the inner window's own gate
    s = by_key[101]
    assert (c.src(s), c.dst(s)) == ("0.0.0.101", "0.0.0.7")
    assert (c.first_seen(s), c.last_seen(s)) == (100.0, float(ts[5]))
    assert c.seen(s)["first_seen"] == "1970-01-01T00:01:40.000000+0000"
    scanned = [c.members(by_key[k]) for k in (101, 102, 103)]  # the first by a scan, the others by the index
    assert [x.tolist() for x in scanned] == [c.items_of(k).tolist() for k in (101, 102, 103)]
    assert sorted(c.item(scanned[0], "port").tolist()) == [1, 2, 3, 4, 5, 6]
    assert c.item_hits(scanned[1]) == 3
    slots, fig = c.top(touched, c.distinct(touched), 2)
    assert slots.tolist() == [by_key[101], by_key[102]] and fig.tolist() == [6, 3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.floats(0, 40, allow_nan=False), st.integers(0, 3)), min_size=1,
                max_size=200))
def test_window_counter_add_with_the_callers_grouping_is_the_same_add(rows):
    """traffic_burst groups its rows by pair once and hands the grouping to add (`grouped`):
    the state is the same as when add groups them itself, also past the table's cap."""
    from wirewatch.detect.count.kernels import group

    keys = np.array([r[0] + 2 for r in rows], np.uint64)
    ts = np.array([r[1] for r in rows])
    values = {"n": np.ones(len(rows), np.int64), "v": np.array([r[2] for r in rows], np.int64)}
    a, b = (WindowCounter(10.0, 4, ("n", "v"), {"lab": np.int64}) for _ in range(2))
    labels = {"lab": np.arange(len(rows), dtype=np.int64)}
    sa = a.add(keys, ts, values, labels)
    sb = b.add(keys, ts, values, labels, grouped=group(keys, inverse=True))
    assert sa.tolist() == sb.tolist()
    for name in a.table.cols:
        assert np.array_equal(a.table.cols[name], b.table.cols[name]), name
    assert np.array_equal(a.table.keys, b.table.keys) and np.array_equal(a.table.last_seen, b.table.last_seen)
    assert a.table.evicted == b.table.evicted


def test_window_counter_add_refuses_a_grouping_with_a_doorkeeper():
    """A doorkeeper drops rows before the table sees them: a grouping of all rows would not fit."""
    import pytest

    from wirewatch.detect.count.kernels import group

    c = WindowCounter(10.0, 4, ("n",), doorkeeper_bits=8)
    keys = np.array([5, 6, 5], np.uint64)
    with pytest.raises(ValueError, match="doorkeeper"):
        c.add(keys, np.zeros(3), {"n": np.ones(3, np.int64)}, grouped=group(keys, inverse=True))


def test_a_label_a_detector_sets_is_what_it_reads_back_and_keys_where_finds():
    """syn_flood remembers what its last report said (set_label) and reads it at the next batch."""
    w = WindowCounter(10.0, 8, ("n",), {"told": np.int64})
    slots = w.add(np.array([5, 6, 7], np.uint64), np.array([1.0, 1.1, 1.2]), {"n": np.ones(3, np.int64)},
                  {"told": np.zeros(3, np.int64)})
    w.set_label(int(slots[1]), "told", 42)
    assert w.label(slots, "told").tolist() == [0, 42, 0]
    assert w.keys_where("told", 42).tolist() == [int(slots[1])]
