"""Raw reads -> decoded batches -> the time slices the detectors see.

Where the detectors decide is a function of packet times and order alone, never of where the
reader cut its batches. The engine makes the cut, and hands the worker (worker.py) the same slices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .capture.pcapfile import RawBatch
from .decode import PacketBatch, decode

SLICE_PACKETS = 32_768  # a time slice is analysed at most this many packets at a time, counted from its start


def decode_raw(raw: RawBatch, max_tunnel_depth: int) -> PacketBatch:
    """One read, decoded; a mapped file truncated under the decoder gives only the rows read
    before its new end, and a nanosecond capture's rows get their nanoseconds back."""
    batch = decode(raw.buf, raw.meta, raw.linktype, max_tunnel_depth)
    if raw.intact is not None and (intact := raw.intact()) < len(raw.meta):
        return decode_raw(raw.prefix(intact), max_tunnel_depth)
    if raw.sub_usec is not None:  # the decoder's meta rows carry microseconds
        batch.ts += raw.sub_usec * 1e-9
    return batch


def join(parts: list[PacketBatch]) -> PacketBatch:
    """The reads of one slice as one batch (the one read itself when there is only one)."""
    return parts[0] if len(parts) == 1 else PacketBatch.concat(parts)


class TimeSlicer:
    """Cuts decoded batches into slices of `step` seconds of packet time.

    A batch of sparse traffic can span minutes of packet time; slicing it keeps every window
    exact to within the step, since state expires between slices. The other way round,
    consecutive batches within one slice are coalesced and analysed together when the slice
    ends: per-call costs are paid per slice, not per batch. A slice of more than `limit`
    packets (a flood) is analysed in pieces of exactly that many, counted from the slice's
    first packet. So the same packets give the same slices (batch_size, a stream's chunk
    ends, compression). The last slice waits for a packet of a later slice, or `take()`.
    """

    def __init__(self, step: float, limit: int = SLICE_PACKETS):
        self.step = step
        self.limit = limit
        self.pending: list[PacketBatch] = []  # the current time slice, not yet analysed
        self.pending_tick = 0.0
        self.pending_rows = 0
        # the reads of one slice -> the slice; a worker's link (worker.py) writes them into its slot
        self.join: Callable[[list[PacketBatch]], PacketBatch] = join

    def add(self, batch: PacketBatch) -> Iterator[PacketBatch]:
        """The slices this batch completes, in order; an empty one only carries a read's
        decode errors."""
        for part in self._ticks(batch):
            if not len(part):
                yield part
                continue
            tick = float(np.floor(part.ts[0] / self.step))
            if self.pending and tick != self.pending_tick:
                yield from self._take()
            self.pending_tick = tick
            while self.pending_rows + len(part) >= self.limit:  # a piece of exactly `limit` packets is complete
                take = self.limit - self.pending_rows
                head = part.select(slice(0, take))
                head.errors, head.non_ip = part.errors, part.non_ip
                part = part.select(slice(take, None))
                self.pending.append(head)
                self.pending_rows = self.limit
                yield from self._take()
            if len(part):
                self.pending.append(part)
                self.pending_rows += len(part)

    def take(self) -> PacketBatch | None:
        """The waiting slice, now (end of input, or a live clock that left it)."""
        return next(self._take(), None)

    def _take(self) -> Iterator[PacketBatch]:
        if not self.pending:
            return
        parts, self.pending, self.pending_rows = self.pending, [], 0
        batch = self.join(parts)
        del parts  # while the slice is analysed, the reads it was cut from need not stay (3.5 MiB a slice)
        yield batch

    def _ticks(self, batch: PacketBatch) -> list[PacketBatch]:
        if len(batch) < 2:
            return [batch]
        tick = np.floor(batch.ts / self.step)
        if tick[0] == tick[-1] and (tick[0] == tick).all():
            return [batch]
        cuts = np.flatnonzero(tick[1:] != tick[:-1]) + 1
        bounds = np.r_[0, cuts, len(batch)]
        parts = [batch.select(slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
        parts[0].errors, parts[0].non_ip = batch.errors, batch.non_ip
        return parts


class ExpiryClock:
    """When detector state expires: every `step` seconds of packet time, counted from the
    first slice analysed."""

    def __init__(self, step: float):
        self.step = step
        self.next: float | None = None

    def due(self, now: float) -> bool:
        if self.next is None:
            self.next = now + self.step
        if now < self.next:
            return False
        self.next = now + self.step
        return True
