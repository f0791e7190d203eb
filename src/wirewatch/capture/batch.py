"""What every packet source hands the engine: raw batches, and one-line capture errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class CaptureError(Exception):
    """A capture file or interface that cannot be read; the message is one line for the user."""


@dataclass
class RawBatch:
    buf: bytes | memoryview  # the packets' bytes: a copy (libpcap) or a window of a mapped file
    meta: np.ndarray  # (n, 4) uint32: sec, usec, offset into buf, caplen
    linktype: int
    sub_usec: np.ndarray | None = None  # uint16 nanoseconds beyond the microsecond, for ns captures
    consumed: int | None = None  # bytes of the capture file this batch stands for (progress); None = unknown
