"""Grouping helpers over uint64 key columns (one `kernels.group` pass each)."""

from __future__ import annotations

import numpy as np

from .kernels import group


def unique_last(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys, the index of each one's last occurrence, and how often it occurs."""
    uk, first, last, counts = unique_first_last(keys)
    return uk, last, counts


def unique_first_last(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys (in order of first occurrence), index of first and last occurrence,
    and counts."""
    order, starts, ends = group(keys)
    return keys[order[starts]], order[starts], order[ends - 1], ends - starts
