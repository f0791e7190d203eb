"""Capture files (pcap and pcapng), many packets per batch.

Files are read by wirewatch's own record walker (capture/walk.py, compiled in
native/pcapwalk.c): a regular file is mapped and walked in place, standard input, pipes and
compressed files are streamed (capture/sources.py). libpcap (pcapy-ng) reads what the walker
does not know (e.g. the rare "modified" pcap variants), and everything when
WIREWATCH_READER=libpcap.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import Callable, Iterator

import numpy as np

from .batch import CaptureError, RawBatch
from .sources import can_map, compression_of, decompressed, mapped_batches, read_head, stream_batches
from .walk import PCAP_MAGIC_NS, PCAP_MAGIC_US, PCAPNG_SHB

__all__ = ["DEFAULT_BATCH", "STDIN", "CaptureError", "RawBatch", "libpcap_batches", "read_batches"]

DEFAULT_BATCH = 4096  # for library callers (tests, bench); `wirewatch read` passes general.batch_size (16384)
STDIN = "-"  # as for tcpdump -r: read the capture from standard input (e.g. tcpdump -w - | wirewatch read -)
KNOWN_MAGICS = {m.to_bytes(4, order) for m in (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAPNG_SHB) for order in ("little", "big")}


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise CaptureError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CaptureError(f"{path}: is a directory, not a capture file")
    if not os.access(path, os.R_OK):
        raise CaptureError(f"{path}: permission denied")


def read_batches(path: str, batch_size: int = DEFAULT_BATCH, compiled: bool = True) -> Iterator[RawBatch]:
    """Yield raw batches of a capture file (or of standard input for "-").

    A damaged or truncated capture still yields every packet before the damage, then raises
    CaptureError naming the file, the byte position and the last good packet."""
    if os.environ.get("WIREWATCH_READER") == "libpcap":
        yield from libpcap_batches(path, batch_size)
        return
    if path == STDIN:
        stdin = sys.stdin.buffer
        head = read_head(stdin)
        yield from _stream("standard input", head, stdin, batch_size, compiled, ready=_ready(stdin))
        return
    _check_path(path)
    try:
        with open(path, "rb") as fh:
            regular = stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
            head = read_head(fh) if regular else b""
    except OSError as exc:
        raise CaptureError(f"{path}: {exc.strerror}") from None
    # pipes, process substitution, compressed files; every regular file without the compiled
    # walker, whose SIGBUS guard a mapping needs (capture/sources.py)
    if not regular or compression_of(head) or (head[:4] in KNOWN_MAGICS and not can_map()):
        with open(path, "rb") as fh:
            yield from _stream(path, read_head(fh), fh, batch_size, compiled, fh.tell if regular else None,
                               None if regular else _ready(fh))
        return
    if not head:
        raise CaptureError(f"{path}: not a pcap/pcapng capture (empty file)")
    if head[:4] in KNOWN_MAGICS:
        yield from mapped_batches(path, batch_size, compiled)
    else:
        yield from libpcap_batches(path, batch_size)


def _stream(name: str, head: bytes, stream, batch_size: int, compiled: bool,
            position: Callable[[], int] | None = None, ready: Callable[[], bool] | None = None) -> Iterator[RawBatch]:
    if not head:
        raise CaptureError(f"{name}: not a pcap/pcapng capture (empty)")
    yield from stream_batches(name, decompressed(name, head, stream), batch_size, compiled, position=position,
                              ready=ready)


def _ready(stream) -> Callable[[], bool]:
    """Whether the kernel holds more input for a pipe (terminal, socket) right now. Bytes its
    reader has already buffered do not count: a refill then stops early, which costs nothing."""
    fd = stream.fileno()
    return lambda: bool(select.select([fd], [], [], 0)[0])


def _open_libpcap(path: str):
    import pcapy  # only for the rare files the walker does not read

    name = "standard input" if path == STDIN else path
    if path != STDIN:
        _check_path(path)
    try:
        return pcapy.open_offline(path)
    except pcapy.PcapError as exc:
        raise CaptureError(f"{name}: not a pcap/pcapng capture ({exc})") from None


def libpcap_batches(path: str, batch_size: int = DEFAULT_BATCH) -> Iterator[RawBatch]:
    """Yield raw batches read by libpcap (copies of the packets).

    libpcap drops the whole failing batch of a damaged file, so the tail is re-read one
    packet at a time from a fresh handle to keep every packet before the damage."""
    import pcapy

    reader = _open_libpcap(path)
    linktype = reader.datalink()
    done = 0
    while True:
        try:
            buf, meta = reader.next_batch(batch_size)
        except pcapy.PcapError as exc:
            if path != STDIN:  # a stream cannot be re-read: what the failing batch held is lost
                for raw in _salvage(path, done, batch_size, linktype):
                    done += len(raw.meta)
                    yield raw
            raise CaptureError(f"{path}: damaged capture after packet {done}: {exc}") from None
        if not meta:
            return
        raw = RawBatch(buf, np.frombuffer(meta, dtype=np.uint32).reshape(-1, 4), linktype)
        done += len(raw.meta)
        yield raw


def _salvage(path: str, skip: int, batch_size: int, linktype: int) -> Iterator[RawBatch]:
    import pcapy

    reader = _open_libpcap(path)
    while skip > 0:
        _, meta = reader.next_batch(min(batch_size, skip))
        skip -= len(meta) // 16
    while True:
        try:
            buf, meta = reader.next_batch(1)
        except pcapy.PcapError:
            return
        if not meta:
            return
        yield RawBatch(buf, np.frombuffer(meta, dtype=np.uint32).reshape(-1, 4), linktype)
