"""Doorkeeper: a key's first row is parked, not counted; its second sighting within the window
replays that row with it; a sighting after the window starts over."""

from __future__ import annotations

import numpy as np

from wirewatch.detect.count.doorkeeper import Doorkeeper


def never_known(keys: np.ndarray) -> np.ndarray:
    return np.zeros(len(keys), bool)


def test_second_sighting_replays_the_parked_row_first():
    door = Doorkeeper(10.0, 8, {"item": np.int64})
    keys, ts, parked, _ = door.admit(never_known, np.array([50, 51], np.uint64), np.array([1.0, 1.5]),
                                     {"item": np.array([7, 8])}, {})
    assert len(keys) == 0 and door.held == 2
    keys, ts, parked, _ = door.admit(never_known, np.array([50], np.uint64), np.array([3.0]),
                                     {"item": np.array([9])}, {})
    assert keys.tolist() == [50, 50] and ts.tolist() == [1.0, 3.0] and parked["item"].tolist() == [7, 9]


def test_a_sighting_after_the_window_is_a_first_sighting_again():
    door = Doorkeeper(10.0, 8, {"item": np.int64})
    door.admit(never_known, np.array([50], np.uint64), np.array([1.0]), {"item": np.array([7])}, {})
    keys, _, _, _ = door.admit(never_known, np.array([50], np.uint64), np.array([20.0]), {"item": np.array([8])}, {})
    assert len(keys) == 0 and door.held == 2


def test_known_and_repeated_keys_pass_straight_through():
    door = Doorkeeper(10.0, 8, {"item": np.int64})
    keys, _, parked, _ = door.admit(lambda k: k == 60, np.array([60, 61, 61], np.uint64), np.array([1.0, 1.0, 1.1]),
                                    {"item": np.array([1, 2, 3])}, {})
    assert keys.tolist() == [60, 61, 61] and parked["item"].tolist() == [1, 2, 3] and door.held == 0


def test_a_parked_key_back_with_several_rows_replays_its_parked_row():
    """A key parked in one batch that comes back with two rows in the next is admitted with
    all three (the parked first sighting first), and its slot is freed: the row is replayed
    once, never again later."""
    door = Doorkeeper(10.0, 8, {"item": np.int64})
    door.admit(never_known, np.array([50], np.uint64), np.array([1.0]), {"item": np.array([7])}, {})
    keys, ts, parked, same = door.admit(never_known, np.array([50, 51, 50], np.uint64), np.array([2.0, 2.1, 2.2]),
                                        {"item": np.array([8, 9, 10])}, {"label": np.array([1, 2, 3])})
    assert keys.tolist() == [50, 50, 50] and ts.tolist() == [1.0, 2.0, 2.2]
    assert parked["item"].tolist() == [7, 8, 10] and same["label"].tolist() == [1, 1, 3]
    assert door.held == 2  # 50 once, 51 now
    keys, _, _, _ = door.admit(never_known, np.array([50], np.uint64), np.array([3.0]), {"item": np.array([11])}, {})
    assert len(keys) == 0 and door.held == 3  # parked anew: the old first sighting is not replayed twice


def test_a_replay_of_a_repeated_key_comes_in_key_order():
    door = Doorkeeper(10.0, 8, {"item": np.int64})
    door.admit(never_known, np.array([60, 61], np.uint64), np.array([1.0, 1.5]), {"item": np.array([1, 2])}, {})
    keys, ts, parked, _ = door.admit(never_known, np.array([61, 60, 60], np.uint64), np.array([2.0, 2.1, 2.2]),
                                     {"item": np.array([3, 4, 5])}, {})
    assert keys.tolist() == [61, 60, 61, 60, 60] and ts.tolist() == [1.5, 1.0, 2.0, 2.1, 2.2]
    assert parked["item"].tolist() == [2, 1, 3, 4, 5]


def test_a_callers_grouping_gives_the_same_admission_and_known_keys_come_back_as_they_are():
    from wirewatch.detect.count.window_util import unique_first_last

    rng = np.random.default_rng(7)
    doors = [Doorkeeper(10.0, 6, {"item": np.int64}) for _ in range(2)]
    known_keys: set[int] = set()
    for step in range(20):
        keys = rng.integers(2, 60, 200).astype(np.uint64)
        ts = np.full(200, float(step))
        items = rng.integers(0, 5, 200)
        known = np.array(sorted(known_keys), np.uint64)
        got = [door.admit(lambda k, known=known: np.isin(k, known), keys, ts, {"item": items}, {"lab": items * 2}, grouped)
               for door, grouped in zip(doors, (None, unique_first_last(keys)))]
        for a, b in zip(got[0], got[1]):
            if isinstance(a, dict):
                assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
            else:
                assert np.array_equal(a, b)
        known_keys.update(int(k) for k in got[0][0])
    everything = np.arange(2, 60, dtype=np.uint64)
    keys = rng.integers(2, 60, 50).astype(np.uint64)
    assert doors[0].admit(lambda k: np.isin(k, everything), keys, np.zeros(50), {"item": keys}, {})[0] is keys
