"""Grouping helpers over uint64 key columns (one `kernels.group` or `kernels.unique` pass each)."""

from __future__ import annotations

import numpy as np

from .kernels import unique


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique(values) of a 1-D array: the distinct values, sorted. Plain np.unique imports
    numpy.ma on its first call (numpy 2.x checks for a masked array), ~10 ms of start-up."""
    s = np.sort(values)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def unique_last(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys, the index of each one's last occurrence, and how often it occurs."""
    uk, first, last, counts = unique_first_last(keys)
    return uk, last, counts


def unique_first_last(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys (in order of first occurrence), index of first and last occurrence,
    and counts."""
    return unique(keys)


def first_rows(keys: np.ndarray) -> np.ndarray:
    """A mask of the rows that hold their key's first occurrence."""
    first = np.zeros(len(keys), bool)
    first[unique(keys)[1]] = True
    return first
