"""Grouping helpers over uint64 key columns (one sort each)."""

from __future__ import annotations

import numpy as np


def unique_last(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys, the index of each one's last occurrence, and how often it occurs."""
    uk, first, last, counts = unique_first_last(keys)
    return uk, last, counts


def sorted_runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable sort order of `keys` and the [start, end) of each run of equal keys in it;
    `np.add.reduceat(values[order], starts)` then sums any column per distinct key."""
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    return order, starts, np.r_[starts[1:], len(ks)]


def unique_first_last(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys (sorted), index of first and last occurrence, and counts: one sort."""
    order, starts, ends = sorted_runs(keys)
    return keys[order[starts]], order[starts], order[ends - 1], ends - starts
