"""Capture-file records -> raw batches, without copying a packet.

`Walker` knows the file formats (classic pcap in both byte orders with microsecond or
nanosecond time stamps; pcapng with sections of either byte order and any number of
interfaces, each with its own link type, snapshot length, `if_tsresol` and `if_tsoffset`)
and turns a buffer holding the file, or the part of it read so far, into RawBatch objects
whose `buf` is a window of that buffer: each packet is a (sec, usec, offset, caplen) row
with its offset into the window, as libpcap's next_batch gives, only without the copy.

The per-record loop is compiled (native/pcapwalk.c); `walk_pcap` and `walk_pcapng` below
are its reference and the fallback without a C compiler (same arguments, same results).
A call stops at a status the driver acts on: the batch is full, the buffer ends (at a
record boundary, or inside a record: a stream reads more, a whole file is truncated),
damage, a pcapng block that changes the interfaces (parsed here, in Python: they are
rare), or a packet whose link type differs from the batch's (a batch has one link type).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import native
from .batch import CaptureError, RawBatch

_compiled = native.load("_pcapwalk")

# statuses, in native/pcapwalk.c's order
FULL, END, INCOMPLETE, BAD_CAPLEN, BAD_BLOCK_LENGTH, BAD_INTERFACE, BAD_PACKET_LENGTH, HEADER, LINKTYPE = range(9)
DAMAGE = {
    INCOMPLETE: "truncated record (the file ends inside it)",
    BAD_CAPLEN: "packet longer than the snapshot length",
    BAD_BLOCK_LENGTH: "block length field damaged (impossible, or its copy at the block's end differs)",
    BAD_INTERFACE: "packet block names an interface that was not described",
    BAD_PACKET_LENGTH: "packet block shorter than its captured length",
}

MAX_CAPLEN = 262144  # libpcap's largest snapshot for the usual link types; larger records are damage
MAX_BLOCK = 16 * 1024 * 1024  # libpcap's largest pcapng block
WINDOW_MAX = 0xFFFFFFFF  # offsets in meta are uint32
# A batch spans at most this many bytes of the capture (besides batch_size packets): a mapped
# file's pages are resident while their batch is decoded, and 16,384 full-size frames held 24 MB
# in each process that reads the file (engine and worker). 4 MiB saved 3 MiB more on bulk-4x
# and ~5 on mixed-4x but cost ~10 % more CPU on bulk-4x (5x the batches); 8 MiB is within the
# noise. A record longer than this is a batch of its own.
BATCH_BYTES = 8 * 1024 * 1024

PCAP_MAGIC_US, PCAP_MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
PCAPNG_SHB, PCAPNG_IDB, PCAPNG_PB, PCAPNG_SPB, PCAPNG_EPB = 0x0A0D0D0A, 1, 2, 3, 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_TSRESOL, OPT_TSOFFSET = 0, 9, 14
PCAP_HEADER = 24

# LINKTYPE_ values in files that libpcap reports as a different DLT_ value on Linux
LINKTYPE_TO_DLT = {100: 11, 101: 12, 102: 15, 103: 16}


def snapshot_of(snaplen: int) -> int:
    """libpcap's rule: a snapshot length of 0 or beyond the maximum means the maximum."""
    return MAX_CAPLEN if snaplen == 0 or snaplen > MAX_CAPLEN else snaplen


def _add_row(meta: np.ndarray, sub: np.ndarray, n: int, base: int, sec: int, nsec: int, data: int,
             caplen: int) -> bool:
    if n and data - base + caplen > WINDOW_MAX:
        return False
    meta[n] = (sec & 0xFFFFFFFF, nsec // 1000, data - base, caplen)
    sub[n] = nsec % 1000
    return True


def _check_pos(walker: str, pos: int, end: int) -> None:
    """As the compiled walker: a start outside the buffer is the caller's error."""
    if not 0 <= pos <= end:
        raise ValueError(f"{walker}: pos outside the buffer")


def walk_pcap(buf, pos: int, big: int, nano: int, snapshot: int, meta: np.ndarray,
              sub: np.ndarray) -> tuple[int, int, int, int]:
    """Classic pcap records from `pos`: (packets, next position, status, base)."""
    view = memoryview(buf).cast("B")
    end, n, base, status = len(view), 0, 0, FULL
    _check_pos("walk_pcap", pos, end)
    header = struct.Struct(">IIII" if big else "<IIII")
    meta = meta.reshape(-1, 4)
    while n < len(sub):
        if pos == end:
            status = END
            break
        if pos + 16 > end:
            status = INCOMPLETE
            break
        sec, frac, caplen, _ = header.unpack_from(view, pos)
        if caplen > MAX_CAPLEN:
            status = BAD_CAPLEN
            break
        if pos + 16 + caplen > end:
            status = INCOMPLETE
            break
        if n == 0:
            base = pos + 16
        if not _add_row(meta, sub, n, base, sec, frac if nano else frac * 1000, pos + 16, min(caplen, snapshot)):
            break
        n += 1
        pos += 16 + caplen
    return n, pos, status, base


def walk_pcapng(buf, pos: int, big: int, linktypes: np.ndarray, snaplens: np.ndarray, units: np.ndarray,
                offsets: np.ndarray, meta: np.ndarray, sub: np.ndarray) -> tuple[int, int, int, int, int]:
    """pcapng blocks from `pos`: (packets, next position, status, base, the packets' link type or -1)."""
    view = memoryview(buf).cast("B")
    end, n, base, status, linktype = len(view), 0, 0, FULL, -1
    _check_pos("walk_pcapng", pos, end)
    o = ">" if big else "<"
    u32, u16 = struct.Struct(o + "I"), struct.Struct(o + "H")
    meta = meta.reshape(-1, 4)
    while n < len(sub):
        if pos == end:
            status = END
            break
        if pos + 12 > end:
            status = INCOMPLETE
            break
        btype, total = u32.unpack_from(view, pos)[0], u32.unpack_from(view, pos + 4)[0]
        if btype in (PCAPNG_SHB, PCAPNG_IDB):
            status = HEADER
            break
        if total < 12 or total % 4 or total > MAX_BLOCK:
            status = BAD_BLOCK_LENGTH
            break
        if pos + total > end:
            status = INCOMPLETE
            break
        if u32.unpack_from(view, pos + total - 4)[0] != total:
            status = BAD_BLOCK_LENGTH
            break
        if btype in (PCAPNG_EPB, PCAPNG_PB, PCAPNG_SPB):
            ts = 0
            if btype == PCAPNG_SPB:
                if total < 16:
                    status = BAD_BLOCK_LENGTH
                    break
                ifid, caplen, data = 0, min(u32.unpack_from(view, pos + 8)[0], total - 16), pos + 12
            else:
                if total < 32:
                    status = BAD_BLOCK_LENGTH
                    break
                ifid = (u32 if btype == PCAPNG_EPB else u16).unpack_from(view, pos + 8)[0]
                ts = u32.unpack_from(view, pos + 12)[0] << 32 | u32.unpack_from(view, pos + 16)[0]
                caplen, data = u32.unpack_from(view, pos + 20)[0], pos + 28
                if caplen > total - 32:
                    status = BAD_PACKET_LENGTH
                    break
            if ifid >= len(linktypes):
                status = BAD_INTERFACE
                break
            if linktype >= 0 and int(linktypes[ifid]) != linktype:
                status = LINKTYPE
                break
            # as libpcap: a simple packet is cut to the snapshot, any other longer one is damage
            snap = int(snaplens[ifid])
            if caplen > snap and btype != PCAPNG_SPB:
                status = BAD_CAPLEN
                break
            caplen = min(caplen, snap)
            unit = int(units[ifid])
            sec = ts // unit + int(offsets[ifid])  # simple packets have no time stamp: 0 + offset
            nsec = (ts % unit) * 1_000_000_000 // unit
            if n == 0:
                base = data
            if not _add_row(meta, sub, n, base, sec, nsec, data, caplen):
                break
            n += 1
            linktype = int(linktypes[ifid])
        pos += total
    return n, pos, status, base, linktype


def _empty_arrays() -> tuple[np.ndarray, ...]:
    return (np.zeros(0, np.int32), np.zeros(0, np.uint32), np.zeros(0, np.uint64), np.zeros(0, np.int64))


# eq=False: numpy columns have no value ==, and each method dataclass makes is compiled at import (start-up)
@dataclass(eq=False)
class _Interfaces:
    """The interface description blocks of the current pcapng section."""

    linktypes: list[int] = field(default_factory=list)
    snaplens: list[int] = field(default_factory=list)
    units: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    arrays: tuple[np.ndarray, ...] = field(default_factory=_empty_arrays)  # for the walker

    def add(self, linktype: int, snaplen: int, unit: int, offset: int) -> None:
        self.linktypes.append(linktype)
        self.snaplens.append(snaplen)
        self.units.append(unit)
        self.offsets.append(offset)
        self.arrays = (np.array(self.linktypes, np.int32), np.array(self.snaplens, np.uint32),
                       np.array(self.units, np.uint64), np.array(self.offsets, np.int64))


class Walker:
    """The batches of one capture, found in successive buffers of it.

    `step(buf, pos)` returns (batch or None, next position, status); the driver
    (capture/sources.py) yields the batch and acts on the status. `compiled=False` runs
    the Python reference walker.
    """

    def __init__(self, name: str, batch_size: int, compiled: bool = True):
        self.name = name
        self.batch_size = batch_size
        self.kernels = _compiled if compiled and _compiled is not None else None
        self.format: str | None = None  # "pcap" or "pcapng" once the file header was read
        self.big = 0
        self.nano = 0
        self.snapshot = MAX_CAPLEN
        self.linktype = 0
        self.ifs = _Interfaces()
        self.packets = 0  # delivered so far
        self.uncounted = 0  # bytes walked (file header, blocks without packets) not yet in a batch's `consumed`
        self.described = False  # an interface description was seen (pcapng)
        self.damage = ""  # why the last status was damage, when it was found in a header
        self.cut_block = False  # the last step stopped inside a section header or interface description

    # ---- file and block headers -------------------------------------------------------
    def _file_header(self, view: memoryview) -> int | None:
        """Length of the file header (pcap) or None when more bytes are needed; raises for
        a file of another kind."""
        if len(view) < 4:
            return None
        magic_le, magic_be = struct.unpack_from("<I", view)[0], struct.unpack_from(">I", view)[0]
        if magic_le == PCAPNG_SHB:
            self.format = "pcapng"
            return 0
        for big, magic in ((0, magic_le), (1, magic_be)):
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                if len(view) < PCAP_HEADER:
                    return None
                o = ">" if big else "<"
                major, _, _, _, snaplen, network = struct.unpack_from(o + "HHiIII", view, 4)
                if major != 2:
                    raise CaptureError(f"{self.name}: not a pcap/pcapng capture (pcap version {major})")
                self.format, self.big, self.nano = "pcap", big, int(magic == PCAP_MAGIC_NS)
                self.snapshot = snapshot_of(snaplen)
                self.linktype = _dlt(network & 0xFFFF)
                return PCAP_HEADER
        raise CaptureError(f"{self.name}: not a pcap/pcapng capture (unknown file format)")

    def _pcapng_header(self, view: memoryview, pos: int) -> tuple[int, int]:
        """Parse the section header or interface description at `pos`: (next position, status)."""
        if pos + 12 > len(view):
            return pos, INCOMPLETE
        btype = struct.unpack_from("<I", view, pos)[0]
        if btype == PCAPNG_SHB:
            order = struct.unpack_from("<I", view, pos + 8)[0]
            if order == BYTE_ORDER_MAGIC:
                self.big = 0
            elif struct.unpack_from(">I", view, pos + 8)[0] == BYTE_ORDER_MAGIC:
                self.big = 1
            else:
                self.damage = "section header with an unknown byte-order magic"
                return pos, BAD_BLOCK_LENGTH
        o = ">" if self.big else "<"
        total = struct.unpack_from(o + "I", view, pos + 4)[0]
        if total % 4 or total > MAX_BLOCK or total < (28 if btype == PCAPNG_SHB else 20):
            self.damage = DAMAGE[BAD_BLOCK_LENGTH]
            return pos, BAD_BLOCK_LENGTH
        if pos + total > len(view):  # the data read so far ends inside it: a stream reads more
            kind = "section header" if btype == PCAPNG_SHB else "interface description"
            self.damage = (f"{kind} block of {total} bytes is longer than the file, which ends "
                           f"{len(view) - pos} bytes into it")
            self.cut_block = True
            return pos, INCOMPLETE
        if struct.unpack_from(o + "I", view, pos + total - 4)[0] != total:
            self.damage = DAMAGE[BAD_BLOCK_LENGTH]
            return pos, BAD_BLOCK_LENGTH
        if btype == PCAPNG_SHB:
            major = struct.unpack_from(o + "H", view, pos + 12)[0]
            if major != 1:
                self.damage = f"pcapng section of version {major}"
                return pos, BAD_BLOCK_LENGTH
            self.ifs = _Interfaces()  # a new section describes its interfaces anew
            return pos + total, FULL
        linktype, _, snaplen = struct.unpack_from(o + "HHI", view, pos + 8)
        unit, offset = 1_000_000, 0
        opt, stop = pos + 16, pos + total - 4
        while opt + 4 <= stop:
            code, size = struct.unpack_from(o + "HH", view, opt)
            if code == OPT_END:
                break
            if opt + 4 + size > stop:
                self.damage = "interface description with an option past its end"
                return pos, BAD_BLOCK_LENGTH
            if code == OPT_TSRESOL and size >= 1:
                res = view[opt + 4]
                unit = 2 ** (res & 0x7F) if res & 0x80 else 10**res
                if unit == 0 or unit >= 2**64:
                    self.damage = f"interface time stamp resolution {res:#x} out of range"
                    return pos, BAD_BLOCK_LENGTH
            elif code == OPT_TSOFFSET and size >= 8:
                offset = struct.unpack_from(o + "q", view, opt + 4)[0]
            opt += 4 + (size + 3) // 4 * 4
        self.ifs.add(_dlt(linktype), snapshot_of(snaplen), unit, offset)
        self.described = True
        return pos + total, FULL

    def _walk(self, view: memoryview, pos: int, meta: np.ndarray, sub: np.ndarray) -> tuple[int, int, int, int, int]:
        """The records of `view` from `pos`: (packets, next position, status, base, link type)."""
        if self.format == "pcap":
            fn = self.kernels.walk_pcap if self.kernels else walk_pcap
            n, end, status, base = fn(view, pos, self.big, self.nano, self.snapshot, meta, sub)
            return n, end, status, base, self.linktype
        walk: Callable[..., tuple[int, int, int, int, int]] = self.kernels.walk_pcapng if self.kernels else walk_pcapng
        return walk(view, pos, self.big, *self.ifs.arrays, meta, sub)

    def unfinished(self) -> str | None:
        """At the end of the data: why it is not a complete capture, or None."""
        if self.format is None:
            return "not a pcap/pcapng capture (truncated file header)"
        if self.format == "pcapng" and not self.described and not self.cut_block:  # (a cut one: damage, there)
            return "not a pcap/pcapng capture (pcapng without an interface description block)"
        return None

    # ---- records ---------------------------------------------------------------------
    def step(self, buf, pos: int) -> tuple[RawBatch | None, int, int]:
        """One batch (or none) from `buf` at `pos`: (batch, next position, status)."""
        view = memoryview(buf).cast("B")
        self.damage, self.cut_block = "", False
        if self.format is None:
            header = self._file_header(view)
            if header is None:
                return None, pos, INCOMPLETE
            self.uncounted += header - pos
            return None, header, FULL
        meta = np.empty((self.batch_size, 4), np.uint32)
        sub = np.empty(self.batch_size, np.uint16)
        n, end, status, base, linktype = self._walk(view[:pos + BATCH_BYTES], pos, meta, sub)
        if len(view) > pos + BATCH_BYTES and status in (END, INCOMPLETE):  # at the byte cap, not the data's end
            if n or end > pos:
                status = FULL
            else:  # the next record alone is longer than the cap: a batch of its own
                n, end, status, base, linktype = self._walk(view, pos, meta[:1], sub[:1])
        if status == HEADER and n == 0 and self.format == "pcapng":
            end, status = self._pcapng_header(view, end)
        if status in DAMAGE and not self.damage:
            self.damage = DAMAGE[status]
        if not n:
            self.uncounted += end - pos
            return None, end, status
        self.packets += n
        meta = meta[:n]
        window = int(meta[-1, 2]) + int(meta[-1, 3])
        subs = sub[:n] if self.nano or (self.format == "pcapng" and sub[:n].any()) else None
        consumed, self.uncounted = end - pos + self.uncounted, 0  # the progress bar reaches 100 %
        return (RawBatch(view[base:base + window], meta, linktype, sub_usec=subs, consumed=consumed, offset=base),
                end, status)


def _dlt(linktype: int) -> int:
    return LINKTYPE_TO_DLT.get(linktype, linktype)
