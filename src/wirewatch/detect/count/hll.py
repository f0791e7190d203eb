"""Distinct counts per key without per-item state: windowed HyperLogLog registers.

A random-source SYN flood brings one new source per packet; counting them exactly means
one table entry each. HyperLogLog counts them in 512 one-byte registers per key (about
4.6 % standard error; small counts use linear counting and are near exact). The window
is two halves, each a register set stamped with its half-window number; the estimate
merges the halves still inside the window. The registers live as columns of the owning
KeyTable (see COLUMNS), so they move and clear with its entries.
"""

from __future__ import annotations

import numpy as np

from .kernels import hll_add

M = 512  # registers per half-window (2^9): about 4.6 % standard error
ALPHA = 0.7213 / (1 + 1.079 / M)
COLUMNS = {"hll": (np.uint8, 2 * M), "hll_epoch": (np.int64, 2)}


class WindowedHLL:
    def __init__(self, window: float):
        self.half = window / 2

    def add(self, cols: dict[str, np.ndarray], slots: np.ndarray, hashes: np.ndarray, ts: np.ndarray) -> None:
        if len(slots):
            hll_add(cols["hll"], cols["hll_epoch"], slots, hashes, np.floor(ts / self.half).astype(np.int64))

    def span_start(self, now: float) -> float:
        """Packet time from which an estimate at `now` counts (the previous half-window's start)."""
        return (np.floor(now / self.half) - 1) * self.half

    def estimate(self, cols: dict[str, np.ndarray], slots: np.ndarray, now: float) -> np.ndarray:
        cur = np.int64(np.floor(now / self.half))
        ep = cols["hll_epoch"][slots]
        live = (ep >= cur - 1) & (ep <= cur)
        regs = cols["hll"][slots].reshape(len(slots), 2, M) * live[:, :, None]
        regs = regs.max(axis=1).astype(np.float64)
        raw = ALPHA * M * M / np.power(2.0, -regs).sum(axis=1)
        zeros = (regs == 0).sum(axis=1)
        linear = M * np.log(M / np.maximum(zeros, 1))
        return np.where((raw <= 2.5 * M) & (zeros > 0), linear, raw)
