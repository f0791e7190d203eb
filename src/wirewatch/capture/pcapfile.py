"""Capture files (pcap and pcapng) read through libpcap, many packets per call."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pcapy

DEFAULT_BATCH = 4096  # 2k-8k packets per next_batch call is fastest and lightest (DESIGN.md)
STDIN = "-"  # as for tcpdump -r: read the capture from standard input (e.g. tcpdump -w - | wirewatch read -)


class CaptureError(Exception):
    """A capture file or interface that cannot be read; the message is one line for the user."""


@dataclass
class RawBatch:
    buf: bytes
    meta: np.ndarray  # (n, 4) uint32: sec, usec, offset, caplen
    linktype: int


def open_pcap(path: str) -> "pcapy.Reader":
    if path == STDIN:
        try:
            return pcapy.open_offline(STDIN)
        except pcapy.PcapError as exc:
            raise CaptureError(f"standard input: not a pcap/pcapng capture ({exc})") from None
    if not os.path.exists(path):
        raise CaptureError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CaptureError(f"{path}: is a directory, not a capture file")
    if not os.access(path, os.R_OK):
        raise CaptureError(f"{path}: permission denied")
    try:
        return pcapy.open_offline(path)
    except pcapy.PcapError as exc:
        raise CaptureError(f"{path}: not a pcap/pcapng capture ({exc})") from None


def read_batches(path: str, batch_size: int = DEFAULT_BATCH) -> Iterator[RawBatch]:
    """Yield raw batches of a capture file.

    A damaged or truncated file still yields every packet before the damage, then raises
    CaptureError: libpcap drops the whole failing batch, so the tail is re-read one packet
    at a time from a fresh handle.
    """
    reader = open_pcap(path)
    linktype = reader.datalink()
    done = 0
    while True:
        try:
            buf, meta = reader.next_batch(batch_size)
        except pcapy.PcapError as exc:
            if path != STDIN:  # a stream cannot be re-read: what the failing batch held is lost
                yield from _salvage(path, done, batch_size, linktype)
            raise CaptureError(f"{path}: damaged capture after packet {done + 1}: {exc}") from None
        if not meta:
            return
        raw = RawBatch(buf, np.frombuffer(meta, dtype=np.uint32).reshape(-1, 4), linktype)
        done += len(raw.meta)
        yield raw


def _salvage(path: str, skip: int, batch_size: int, linktype: int) -> Iterator[RawBatch]:
    reader = pcapy.open_offline(path)
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
