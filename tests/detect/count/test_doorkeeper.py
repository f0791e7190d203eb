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
