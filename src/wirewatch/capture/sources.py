"""The two ways a capture reaches the record walker: mapped whole, or streamed in chunks.

A regular uncompressed file is mapped into memory and walked in place (pages already read
are handed back to the kernel as the walk moves on, so the resident set stays small on a
file of any size). Standard input, pipes and compressed files (gzip, xz, bzip2, zstd) are
read in chunks into fresh buffers that the batches then point into; a record cut by the end
of a chunk is carried into the next one. Both drive the same Walker, so both give the
same batches, and damage is reported the same way: every packet before it is yielded,
then one CaptureError naming the file, the byte position and the last good packet.

A mapped file that another process truncates while it is read would raise SIGBUS at the
first access past its new end. The compiled walker module guards each mapping
(native/pcapwalk.c: the pages past the end read zeros and the fault is counted); the reader
checks the count after each walk and after the consumer decoded each batch, and ends with
the damage rule at the file's new size. Without the compiled module there is no such
guard, so regular files are then streamed like pipes (`can_map`).
"""

from __future__ import annotations

import io
import mmap
import os
import weakref
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

import numpy as np

from .. import native
from .batch import CaptureError, RawBatch
from .walk import DAMAGE, END, INCOMPLETE, Walker

CHUNK = 8 * 1024 * 1024  # bytes read per refill of a stream
LIVE_CHUNK = 1024 * 1024  # per refill of a pipe that may pause (each refill allocates this much)
MAP_AHEAD = 65536  # native/pcapwalk.c MAP_AHEAD: the walk touches the mapping in blocks of this size
RELEASE_EVERY = 2 * 1024 * 1024  # hand mapped pages back to the kernel in steps of this size (a batch spans <= walk.BATCH_BYTES)
MAGIC_LEN = 6
COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)

Refill = Callable[[object, int], "tuple[object, int] | None"]
_guards = native.load("_pcapwalk")


def can_map() -> bool:
    """Whether a regular file may be mapped: only with the SIGBUS guard of the compiled walker."""
    return _guards is not None


def compression_of(head: bytes) -> str | None:
    return next((name for magic, name in COMPRESSED if head.startswith(magic)), None)


def _damage(name: str, walker: Walker, offset: int, status: int) -> CaptureError:
    reason = walker.damage or DAMAGE.get(status, "damaged record")
    good = walker.packets
    where = f"after packet {good}" if good else "before the first packet"
    return CaptureError(f"{name}: damaged capture at byte {offset}, {where}: {reason}")


def _truncated(name: str, walker: Walker, size: int) -> CaptureError:
    good = walker.packets
    where = f"after packet {good}" if good else "before the first packet"
    return CaptureError(f"{name}: damaged capture at byte {size}, {where}: the file was truncated to {size} bytes "
                        f"while it was read")


def _rows_before(raw: RawBatch, size: int) -> int:
    """How many of the batch's packets lie wholly before byte `size` of the walked buffer."""
    return _rows_within(raw.offset, raw.meta, size)


def _rows_within(offset: int, meta: np.ndarray, size: int) -> int:
    ends = offset + meta[:, 2].astype(np.int64) + meta[:, 3]
    return int(np.searchsorted(ends, size, side="right"))


def _intact(raw: RawBatch, truncated: Callable[[], int | None]) -> Callable[[], int]:
    # the closure holds the batch's meta, not the batch: a cycle (batch -> intact -> batch)
    # would keep every batch's arrays until the cyclic collector runs (+16 MiB peak RSS seen)
    offset, meta = raw.offset, raw.meta

    def intact() -> int:
        size = truncated()
        return len(meta) if size is None else _rows_within(offset, meta, size)

    return intact


def _drive(name: str, walker: Walker, buf: object, refill: Refill, offset_of: Callable[[int], int],
           moved: Callable[[int], None] = lambda pos: None,
           truncated: Callable[[], int | None] | None = None) -> Iterator[RawBatch]:
    """Walk, refill and report damage. `truncated` (a mapped file) gives the file's new size
    once it shrank under the walk, else None."""
    pos = 0
    while True:
        raw, pos, status = walker.step(buf, pos)
        cut = truncated() if truncated is not None else None
        if cut is not None:  # the file shrank: did the walk read past its new end (zeros)?
            rows = 0 if raw is None else len(raw.meta)
            keep = 0 if raw is None else _rows_before(raw, cut)
            if keep < rows or pos > cut:
                walker.packets -= rows - keep
                if keep:
                    yield raw.prefix(keep)  # type: ignore[union-attr]
                raise _truncated(name, walker, cut)
        if raw is not None:
            if truncated is not None:
                raw.intact = _intact(raw, truncated)
            yield raw
            cut = truncated() if truncated is not None else None
            if cut is not None and _rows_before(raw, cut) < len(raw.meta):  # the consumer read zeros
                walker.packets -= len(raw.meta) - _rows_before(raw, cut)
                raise _truncated(name, walker, cut)
            moved(pos)
        if status in DAMAGE and status != INCOMPLETE:
            raise _damage(name, walker, offset_of(pos), status)
        if status in (END, INCOMPLETE):
            more = refill(buf, pos)
            if more is not None:
                buf, pos = more
                continue
            if walker.unfinished():
                raise CaptureError(f"{name}: {walker.unfinished()}")
            if status == END:
                return
            raise _damage(name, walker, offset_of(pos), INCOMPLETE)


def mapped_batches(path: str, batch_size: int, compiled: bool = True) -> Iterator[RawBatch]:
    """The batches of a regular file, walked in a read-only mapping of it.

    Behind the walk, pages are handed back (MADV_DONTNEED: they stay in the page cache, but
    no longer count in this process's resident set). Ahead of it, plain page faults map them:
    measured, they cost less than MADV_POPULATE_READ (the kernel maps 16 pages a fault).
    A truncation by another process ends the file with the damage rule (see the module's doc)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise CaptureError(f"{path}: not a pcap/pcapng capture (empty file)")
        mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        fd = os.dup(fh.fileno())  # for fstat once a fault says the file shrank
    # no close(): the batches' windows keep the mapping alive until the engine drops them
    slot = _guards.guard(mapping) if _guards is not None else -1
    if slot >= 0:
        weakref.finalize(mapping, _guards.unguard, slot)  # type: ignore[union-attr]
    released = [0]

    def release(pos: int) -> None:
        start = released[0]
        if pos - start >= RELEASE_EVERY and hasattr(mapping, "madvise"):
            stop = pos - pos % mmap.PAGESIZE
            # from the start of the block the walk last stopped in: its next step reads from
            # there on (native/pcapwalk.c map_ahead) and maps the pages of that block again
            # (+14 MiB on bulk-4x, never handed back, had the release started at `start`)
            start -= start % MAP_AHEAD
            mapping.madvise(mmap.MADV_DONTNEED, start, stop - start)
            released[0] = stop

    def truncated() -> int | None:
        # fstat (about a microsecond, a few times per batch) also sees a file that shrank within
        # its last page, where the bytes past the end read zeros without a fault
        now = os.fstat(fd).st_size
        if now < size or (slot >= 0 and _guards.faults(slot)):  # type: ignore[union-attr]
            return min(now, size)
        return None

    try:
        yield from _drive(path, Walker(path, batch_size, compiled), mapping, lambda buf, pos: None, lambda pos: pos,
                          release, truncated)
    finally:
        os.close(fd)


def stream_batches(name: str, stream: BinaryIO, batch_size: int, compiled: bool = True,
                   chunk: int = CHUNK, position: Callable[[], int] | None = None,
                   ready: Callable[[], bool] | None = None) -> Iterator[RawBatch]:
    """The batches of a capture read from a stream, `chunk` bytes at a time.

    `ready` (given for pipes and standard input) tells whether more input is there without
    waiting: a refill then stops at what has arrived, so that `tcpdump -w - | wirewatch read -`
    analyses packets as they come instead of when a whole chunk has accumulated.
    A read that fails (a corrupt or truncated compressed file, an I/O error) ends the
    capture after the records that were read completely before it. `position` tells how
    far into the file the stream has read (a compressed file: its compressed bytes), for
    each batch's `consumed` (the progress bar)."""
    walker = Walker(name, batch_size, compiled)
    if ready is not None:
        chunk = min(chunk, LIVE_CHUNK)
    done = [0]  # bytes of the stream before the current buffer
    failure: list[Exception] = []

    def refill(buf, pos: int) -> tuple[bytearray, int] | None:
        tail = memoryview(buf)[pos:]
        fresh = bytearray(max(chunk, 2 * len(tail)))
        fresh[: len(tail)] = tail
        filled = len(tail)
        view = memoryview(fresh)
        # readinto1: one read of the underlying stream per call, so that a read that fails
        # (EOFError of a truncated .gz) loses nothing decompressed before it
        read = getattr(stream, "readinto1", None) or cast(io.RawIOBase, stream).readinto  # typeshed's BinaryIO has no readinto
        while filled < len(fresh) and not failure:
            try:
                got = read(view[filled:])
            except Exception as exc:  # noqa: BLE001 - gzip, xz, zstd and I/O errors alike end the stream
                failure.append(exc)
                break
            if not got:
                break
            filled += got
            if ready is not None and not ready():
                break
        view.release()
        if filled == len(tail):
            if failure:
                where = f"after packet {walker.packets}" if walker.packets else "before the first packet"
                raise CaptureError(f"{name}: cannot read past byte {done[0] + pos} of the capture, {where}: "
                                   f"{failure[0]}")
            return None
        del fresh[filled:]  # nothing points into it yet
        done[0] += pos
        return fresh, 0

    last = 0
    for raw in _drive(name, walker, b"", refill, lambda pos: done[0] + pos):
        if position is not None:
            now = position()
            raw.consumed, last = now - last, now
        yield raw


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to recognise its format)."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        # readinto1 where the stream has it: one read of what is there (a BufferedReader's
        # readinto would wait until `b` is full, which a pipe may take minutes to do)
        read = getattr(self.rest, "readinto1", None) or cast(io.RawIOBase, self.rest).readinto
        return read(b) or 0


def decompressed(name: str, head: bytes, stream: BinaryIO) -> BinaryIO:
    """`stream` (whose first bytes `head` were already read) decompressed when it is compressed."""
    raw = _Prefixed(head, stream)
    kind = compression_of(head)
    # the decompressors are imported only for a compressed capture (start-up of `read`)
    if kind == "gzip":
        import gzip

        return cast(BinaryIO, gzip.GzipFile(fileobj=raw))
    if kind == "xz":
        import lzma

        return cast(BinaryIO, lzma.LZMAFile(cast(BinaryIO, raw)))
    if kind == "bzip2":
        import bz2

        return cast(BinaryIO, bz2.BZ2File(raw))
    if kind == "zstd":
        try:
            import zstandard
        except ImportError:
            raise CaptureError(f"{name}: zstd-compressed, and the zstandard package is not installed") from None
        return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(cast(BinaryIO, raw)))
    return io.BufferedReader(raw)


def load_decompressors() -> None:
    """Import every module decompressed() may need now, not at the first compressed capture: the
    dashboard calls this before it drops root (its downloads read alerts' compressed captures,
    and the user it drops to may not be able to read the interpreter's library)."""
    import bz2  # noqa: F401
    import gzip  # noqa: F401
    import lzma  # noqa: F401

    try:
        import zstandard  # noqa: F401
    except ImportError:
        pass  # decompressed() names the missing package for a zstd capture


def read_head(stream: BinaryIO, size: int = MAGIC_LEN) -> bytes:
    head = b""
    while len(head) < size:
        got = stream.read(size - len(head))
        if not got:
            break
        head += got
    return head
