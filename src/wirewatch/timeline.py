"""Packets per second of packet time, for the dashboard's chart of an analysed capture.

A live sensor's rate comes from its periodic stats events; a capture file read in one go
has a single final event, so the engine keeps this histogram instead. It is bounded: at
most `bins` bins, and when a capture runs longer, neighbouring bins merge (the bin width
doubles), so a day-long capture costs the same as a minute.
"""

from __future__ import annotations

import numpy as np

BINS = 300


class Timeline:
    def __init__(self, bins: int = BINS):
        self.counts = np.zeros(bins, np.int64)
        self.width = 1.0  # seconds per bin
        self.start: float | None = None

    def add(self, ts: np.ndarray) -> None:
        if not len(ts):
            return
        if self.start is None:
            self.start = float(np.floor(ts.min()))
        # the width is a power of two, so dividing by it is exact and floor(x / width) is x // width
        # (which numpy computes through fmod, several times the cost)
        idx = np.maximum(np.floor((ts - self.start) / self.width), 0).astype(np.int64)  # earlier stragglers: first bin
        while idx.max() >= len(self.counts):
            self.counts = np.concatenate([self.counts.reshape(-1, 2).sum(axis=1), np.zeros(len(self.counts) // 2, np.int64)])
            self.width *= 2
            idx //= 2
        self.counts += np.bincount(idx, minlength=len(self.counts))

    def rates(self) -> list[dict[str, float]]:
        """[{"t": bin start (epoch seconds), "pps": packets per second}] up to the last packet."""
        if self.start is None:
            return []
        last = int(np.flatnonzero(self.counts).max()) + 1 if self.counts.any() else 0
        return [{"t": self.start + i * self.width, "pps": round(float(c) / self.width, 3)}
                for i, c in enumerate(self.counts[:last].tolist())]
