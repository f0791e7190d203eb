"""A progress bar on stderr for large capture files (only when stderr is a terminal)."""

from __future__ import annotations

import os
import sys
from typing import TextIO

MIN_BYTES = 50 * 1024 * 1024
RECORD_HEADER = 16


class Progress:
    def __init__(self, path: str, enabled: bool = True, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        try:
            self.total = os.path.getsize(path) if path != "-" else 0  # standard input: size unknown
        except OSError:
            self.total = 0
        self.enabled = enabled and self.total >= MIN_BYTES and self.stream.isatty()
        self.done = 0
        self.path = os.path.basename(path)
        self.shown = -1

    def update(self, raw) -> None:
        if not self.enabled:
            return
        self.done += raw.consumed if raw.consumed is not None else len(raw.buf) + RECORD_HEADER * len(raw.meta)
        pct = min(100, int(100 * self.done / self.total))
        if pct != self.shown:
            self.shown = pct
            bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
            self.stream.write(f"\r{self.path} [{bar}] {pct:3d}%")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.shown >= 0:
            self.stream.write("\n")
            self.stream.flush()
