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
from collections.abc import Iterable
from typing import IO, Any

import numpy as np

from .capture.pcapfile import CaptureError, read_batches

PCAP_US, PCAP_NS = 0xA1B2C3D4, 0xA1B23C4D
SNAPLEN = 262144


class PacketsError(Exception):
    """An alert whose packets cannot be given back; the message is one line for the user."""


def write_pcap(out: IO[bytes], packets: Iterable[tuple[int, int, bytes, int]]) -> int:
    """Classic pcap with nanosecond time stamps: (sec, ns, bytes, linktype) records; the link
    type is the first packet's (a file holds one; packets of another are left out). The
    original length is the captured length (the reader does not keep the wire length)."""
    linktype: int | None = None
    n = 0
    for sec, ns, data, lt in packets:
        if linktype is None:
            linktype = lt
            out.write(struct.pack("<IHHiIII", PCAP_NS, 2, 4, 0, 0, SNAPLEN, lt))
        if lt != linktype:
            continue
        out.write(struct.pack("<IIII", sec, ns, len(data), len(data)))
        out.write(data)
        n += 1
    if linktype is None:
        out.write(struct.pack("<IHHiIII", PCAP_NS, 2, 4, 0, 0, SNAPLEN, 1))
    return n


def capture_frames(path: str, frames: list[int]) -> list[tuple[int, int, bytes, int]]:
    """These frames (1-based, as Wireshark numbers them) of a capture file, in file order."""
    if path == "-":
        raise PacketsError("the alert's packets were read from standard input, which cannot be read again")
    if not os.path.exists(path):
        raise PacketsError(f"{path}: the capture file the alert was read from is no longer there")
    wanted = np.unique(np.asarray(frames, np.int64))
    out: list[tuple[int, int, bytes, int]] = []
    base = 1
    try:
        for raw in read_batches(path):
            n = len(raw.meta)
            lo, hi = np.searchsorted(wanted, [base, base + n])
            for frame in wanted[lo:hi].tolist():
                row = frame - base
                sec, usec, off, cap = (int(x) for x in raw.meta[row])
                ns = usec * 1000 + (int(raw.sub_usec[row]) if raw.sub_usec is not None else 0)
                out.append((sec, ns, bytes(raw.buf[off:off + cap]), raw.linktype))
            base += n
            if hi == len(wanted):
                break
    except CaptureError as exc:
        raise PacketsError(str(exc)) from None
    return out


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
    file, frames = packets.get("file"), packets.get("frames")
    if not isinstance(file, str) or not isinstance(frames, list) or not frames:
        raise PacketsError("the alert has no packets recorded (none matched in the packet ring)")
    buf = io.BytesIO()
    write_pcap(buf, capture_frames(file, [int(f) for f in frames]))
    return buf.getvalue()


class PcapSpool:
    """Live capture's alert pcaps in one directory, at most `max_files` files and `max_bytes`
    bytes of them; the oldest are removed first (counted)."""

    def __init__(self, directory: str, max_files: int, max_bytes: int):
        self.directory, self.max_files, self.max_bytes = directory, max_files, max_bytes
        self.written = self.removed = self.failed = 0
        self._seq = 0

    def write(self, alert: dict[str, Any], packets: list[tuple[int, int, bytes, int]]) -> str:
        os.makedirs(self.directory, mode=0o750, exist_ok=True)  # packets with payloads: not for every local user
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"alert-{stamp}-{os.getpid()}-{self._seq:06d}-{alert.get('type', 'alert')}.pcap"
        path = os.path.join(self.directory, name)
        tmp = path + ".part"
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "wb") as fh:
                write_pcap(fh, packets)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.written += 1
        self._enforce()
        return name

    def _enforce(self) -> None:
        entries = []
        with os.scandir(self.directory) as it:
            for e in it:
                if e.name.startswith("alert-") and e.name.endswith(".pcap") and e.is_file():
                    st = e.stat()
                    entries.append((st.st_mtime_ns, e.name, st.st_size))
        entries.sort()
        total = sum(size for _, _, size in entries)
        while entries and (len(entries) > self.max_files or total > self.max_bytes):
            _, name, size = entries.pop(0)
            try:
                os.unlink(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass
            total -= size
            self.removed += 1

    def stats(self) -> dict[str, int]:
        return {"alert_pcaps_written": self.written, "alert_pcaps_removed": self.removed,
                "alert_pcaps_failed": self.failed}
