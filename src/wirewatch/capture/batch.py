"""What every packet source hands the engine: raw batches, and one-line capture errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np


class CaptureError(Exception):
    """A capture file or interface that cannot be read; the message is one line for the user."""


# eq=False, repr=False: megabytes of buffers, compared and shown by identity (each method dataclass makes
# is compiled at import: start-up)
@dataclass(eq=False, repr=False)
class RawBatch:
    buf: bytes | memoryview  # the packets' bytes: a copy (libpcap) or a window of a mapped file
    meta: np.ndarray  # (n, 4) uint32: sec, usec, offset into buf, caplen
    linktype: int
    sub_usec: np.ndarray | None = None  # uint16 nanoseconds beyond the microsecond, for ns captures
    consumed: int | None = None  # bytes of the capture file this batch stands for (progress); None = unknown
    offset: int = 0  # where buf starts in the buffer the walker walked (a mapped file: the file position)
    # a mapped file: how many rows are still intact after the consumer read them (another process
    # may truncate the file meanwhile: the rows past its new end then read zeros); None = all, always
    intact: Callable[[], int] | None = None
    # live capture: (n,) uint32, each packet's length on the wire (meta's caplen is what was
    # captured of it, less under a short --snaplen); None where the reader does not know it
    wire_len: np.ndarray | None = None

    def prefix(self, rows: int) -> RawBatch:
        """The first `rows` packets of this batch."""
        sub = None if self.sub_usec is None else self.sub_usec[:rows]
        wire = None if self.wire_len is None else self.wire_len[:rows]
        return replace(self, meta=self.meta[:rows], sub_usec=sub, wire_len=wire, intact=None)
