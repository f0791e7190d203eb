"""Helpers detectors share to decide when to report and to describe evidence."""

from __future__ import annotations

import numpy as np

from ...addr import addr_str
from ...schema import format_ts
from .table import KeyTable


def due(table: KeyTable, slots: np.ndarray, now: float, interval: float, col: str = "reported") -> np.ndarray:
    """Slots that may report again (once per `interval` of packet time); marks them reported.

    The detector reports a key that stays above threshold at most once per interval; the
    alert manager then decides between a new alert and a suppressed duplicate.
    """
    rep = table.cols[col][slots]
    ok = (rep == 0) | (now - rep >= interval)
    table.cols[col][slots[ok]] = now
    return slots[ok]


def src_of(table: KeyTable, slot: int) -> str:
    c = table.cols
    return addr_str(c["src_hi"][slot], c["src_lo"][slot])


def dst_of(table: KeyTable, slot: int) -> str:
    c = table.cols
    return addr_str(c["dst_hi"][slot], c["dst_lo"][slot])


def times(first: float, last: float) -> dict[str, str]:
    return {"first_seen": format_ts(first), "last_seen": format_ts(last)}
