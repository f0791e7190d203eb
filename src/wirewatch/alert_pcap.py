"""An alert's packets as a pcap: written from the frames of the original capture file
(`packets.file` + `packets.frames`), or, live, kept in `output.pcap_dir` when the alert fired
(`packets.pcap`; PcapSpool caps that directory in files and bytes, oldest removed first).
`wirewatch extract` and the dashboard's download both come here."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import time
from collections import deque
from collections.abc import Iterable
from typing import IO, Any

import numpy as np

from .capture.pcapfile import CaptureError, read_batches
from .capture.sources import decompressed, read_head

PCAP_US, PCAP_NS = 0xA1B2C3D4, 0xA1B23C4D
SNAPLEN = 262144


class PacketsError(Exception):
    """An alert whose packets cannot be given back; the message is one line for the user."""


class CaptureChanged(PacketsError):
    """The file at the alert's `packets.file` is not the one its frames were read from."""


Packet = tuple[int, int, bytes, int, int]  # sec, sub-second ns, bytes as captured, linktype, length on the wire


def write_pcap(out: IO[bytes], packets: Iterable[Packet]) -> int:
    """Classic pcap with nanosecond time stamps: (sec, ns, bytes, linktype, wire length)
    records; the link type is the first packet's (a file holds one; packets of another are
    left out). A frame the capture truncated keeps its captured length and its original one."""
    linktype: int | None = None
    n = 0
    for sec, ns, data, lt, wire in packets:
        if linktype is None:
            linktype = lt
            out.write(struct.pack("<IHHiIII", PCAP_NS, 2, 4, 0, 0, SNAPLEN, lt))
        if lt != linktype:
            continue
        out.write(struct.pack("<IIII", sec, ns, len(data), max(wire, len(data))))
        out.write(data)
        n += 1
    if linktype is None:
        out.write(struct.pack("<IHHiIII", PCAP_NS, 2, 4, 0, 0, SNAPLEN, 1))
    return n


def check_file(packets: dict[str, Any]) -> str:
    """The capture file an alert's frames are in, if it is still the file they were read from:
    PacketsError (one line) when it was standard input or another input that cannot be read
    again, is gone, or was replaced or rewritten since (its size or mtime_ns differ from what
    the alert recorded; records from before those were kept are only checked to exist)."""
    path = packets.get("file")
    if not isinstance(path, str):
        raise PacketsError("the alert has no packets recorded (none matched in the packet ring)")
    if path == "-":
        raise PacketsError("the alert's packets were read from standard input, which cannot be read again")
    if packets.get("reopenable") is False:
        raise PacketsError(f"{path}: the alert's packets were read from a pipe or another input that is not a "
                           "file (e.g. <(...)), which cannot be read again")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise PacketsError(f"{path}: the capture file the alert was read from is no longer there") from None
    except OSError as exc:
        raise PacketsError(f"{path}: {exc.strerror}") from None
    size, mtime = packets.get("size"), packets.get("mtime_ns")
    if (size is not None and size != st.st_size) or (mtime is not None and mtime != st.st_mtime_ns):
        raise CaptureChanged(f"{path}: not the capture file the alert was read from: replaced or changed since "
                           f"(size {st.st_size}, modified {_when(st.st_mtime_ns)}; the alert's file: size {size}, "
                           f"modified {_when(mtime)})")
    return path


def _when(ns: Any) -> str:
    if not isinstance(ns, int):
        return "unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def capture_frames(path: str, frames: list[int]) -> list[Packet]:
    """These frames (1-based, as Wireshark numbers them) of a capture file, in file order,
    with each frame's length on the wire (the path as check_file gave it)."""
    wanted = np.unique(np.asarray(frames, np.int64))
    out: list[Packet] = []
    base = 1
    try:
        order = _byte_order(path)
        for raw in read_batches(path):
            n = len(raw.meta)
            lo, hi = np.searchsorted(wanted, [base, base + n])
            for frame in wanted[lo:hi].tolist():
                row = frame - base
                sec, usec, off, cap = (int(x) for x in raw.meta[row])
                ns = usec * 1000 + (int(raw.sub_usec[row]) if raw.sub_usec is not None else 0)
                out.append((sec, ns, bytes(raw.buf[off:off + cap]), raw.linktype, _wire_length(raw, off, cap, order)))
            base += n
            if hi == len(wanted):
                break
    except CaptureError as exc:
        raise PacketsError(str(exc)) from None
    return out


def _byte_order(path: str) -> str | None:
    """"<" or ">" for the capture's records (pcap: its magic; pcapng: the first section's
    byte-order magic), None when not known."""
    try:
        with open(path, "rb") as fh:
            head = decompressed(path, read_head(fh), fh).read(12)
    except (OSError, EOFError, CaptureError):
        return None
    if len(head) < 12:
        return None
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        return "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">" if head[8:12] == b"\x1a\x2b\x3c\x4d" else None
    magic = struct.unpack_from("<I", head)[0]
    if magic in (PCAP_US, PCAP_NS):
        return "<"
    if struct.unpack_from(">I", head)[0] in (PCAP_US, PCAP_NS):
        return ">"
    return None


def _wire_length(raw: Any, off: int, cap: int, order: str | None) -> int:
    """A frame's original length: in pcap and in pcapng (enhanced, simple and obsolete packet
    blocks) alike it is the 4 bytes before the frame's data, in the buffer the record walker
    walked (the batch's buffer is a window of it). The captured length when not known (the
    libpcap fallback copies the frames; a byte order not known) or not plausible."""
    buf = raw.buf
    if order is None or not isinstance(buf, memoryview):
        return cap
    at = raw.offset + off - 4
    whole = buf.obj
    try:
        if at < 0 or at + 4 > len(whole):  # type: ignore[arg-type]
            return cap
        wire = struct.unpack(order + "I", bytes(memoryview(whole)[at:at + 4]))[0]
    except (TypeError, ValueError, struct.error):
        return cap
    return wire if wire >= cap else cap


def alert_pcap(record: dict[str, Any], pcap_dir: str) -> bytes:
    """The pcap of a stored alert's packets; PacketsError (one line) when it has none or
    they cannot be read any more."""
    packets = record.get("packets")
    if not isinstance(packets, dict):
        raise PacketsError("the alert has no packets recorded (stored before output.alert_frames, or by a sensor "
                           "without them)")
    name = packets.get("pcap")
    if isinstance(name, str):
        if os.path.basename(name) != name or name.startswith("."):
            raise PacketsError(f"{name}: not a file name in output.pcap_dir")
        path = os.path.join(pcap_dir, name)
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise PacketsError(f"{path}: the alert's pcap is no longer there (removed to keep output.pcap_dir "
                               "within its caps?)") from None
        except OSError as exc:
            raise PacketsError(f"{path}: {exc.strerror}") from None
    frames = packets.get("frames")
    if not isinstance(frames, list) or not frames:
        raise PacketsError("the alert has no packets recorded (none matched in the packet ring)")
    file = check_file(packets)  # says the same when there is no file
    buf = io.BytesIO()
    write_pcap(buf, capture_frames(file, [int(f) for f in frames]))
    return buf.getvalue()


class PcapSpool:
    """Live capture's alert pcaps in one directory, at most `max_files` files and `max_bytes`
    bytes of them; the oldest are removed first (counted). The directory is listed once, at
    the first write (files of earlier runs count, oldest by mtime first); after that the
    spool keeps its own list in memory: writing an alert's pcap never lists the directory. So the
    caps are this process's: another sensor writing the same directory is not seen after the
    listing, and the two together keep up to the sum of their caps (README says so)."""

    def __init__(self, directory: str, max_files: int, max_bytes: int):
        self.directory, self.max_files, self.max_bytes = directory, max_files, max_bytes
        self.written = self.removed = self.failed = 0
        self._seq = 0
        self._files: deque[tuple[str, int]] | None = None  # (name, size), oldest first
        self._bytes = 0

    def write(self, alert: dict[str, Any], packets: list[Packet]) -> str:
        os.makedirs(self.directory, mode=0o750, exist_ok=True)  # packets with payloads: not for every local user
        if self._files is None:
            self._files = self._listing()
            self._bytes = sum(size for _, size in self._files)
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"alert-{stamp}-{os.getpid()}-{self._seq:06d}-{alert.get('type', 'alert')}.pcap"
        path = os.path.join(self.directory, name)
        tmp = path + ".part"
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "wb") as fh:
                write_pcap(fh, packets)
                size = fh.tell()
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.written += 1
        self._files.append((name, size))
        self._bytes += size
        self._enforce()
        return name

    def _listing(self) -> deque[tuple[str, int]]:
        entries = []
        with os.scandir(self.directory) as it:
            for e in it:
                if e.name.startswith("alert-") and e.name.endswith(".pcap") and e.is_file():
                    st = e.stat()
                    entries.append((st.st_mtime_ns, e.name, st.st_size))
        entries.sort()
        return deque((name, size) for _, name, size in entries)

    def _enforce(self) -> None:
        files = self._files
        assert files is not None
        while files and (len(files) > self.max_files or self._bytes > self.max_bytes):
            name, size = files.popleft()
            self._bytes -= size
            try:
                os.unlink(os.path.join(self.directory, name))
            except FileNotFoundError:  # removed by someone else meanwhile (another sensor): not ours to count
                continue
            self.removed += 1

    def stats(self) -> dict[str, int]:
        return {"alert_pcaps_written": self.written, "alert_pcaps_removed": self.removed,
                "alert_pcaps_failed": self.failed}
