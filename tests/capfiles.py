"""Capture files written byte by byte (classic pcap and pcapng, either byte order), and the
readers the tests compare: libpcap's, and wirewatch's mapped and streaming ones."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import pcapy
from conftest import native_paths
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from wirewatch.capture import sources
from wirewatch.capture.batch import CaptureError

Packet = tuple[int, int, int, bytes, int]  # sec, usec, caplen, bytes, linktype


def frames(count: int = 6) -> list[bytes]:
    """Real frames of several kinds and sizes."""
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    kinds = [
        eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="S"),
        eth / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=53, dport=5353) / (b"x" * 37),
        eth / IP(src="10.0.0.3", dst="10.0.0.4") / ICMP() / (b"p" * 3),
        eth / IP(src="10.0.0.5", dst="10.0.0.6") / TCP(sport=2, dport=443, flags="PA") / (b"d" * 101),
    ]
    return [bytes(kinds[i % len(kinds)]) for i in range(count)]


def pcap(packets: list[tuple[int, int, bytes]], big: bool = False, nano: bool = False, linktype: int = 1,
         snaplen: int = 65535, caplens: dict[int, int] | None = None) -> bytes:
    """A classic pcap: packets are (sec, fraction in us or ns, bytes); caplens overrides a record's field."""
    o = ">" if big else "<"
    out = [struct.pack(o + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for i, (sec, frac, data) in enumerate(packets):
        out.append(struct.pack(o + "IIII", sec, frac, (caplens or {}).get(i, len(data)), len(data)) + data)
    return b"".join(out)


@dataclass
class Interface:
    linktype: int = 1
    snaplen: int = 0
    tsresol: int | None = None  # the if_tsresol byte; None = microseconds (no option)
    tsoffset: int | None = None


def _block(o: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(o + "II", btype, total) + body + struct.pack(o + "I", total)


def _option(o: str, code: int, value: bytes) -> bytes:
    return struct.pack(o + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(big: bool = False) -> bytes:
    o = ">" if big else "<"
    return _block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(ifc: Interface, big: bool = False) -> bytes:
    o = ">" if big else "<"
    opts = b""
    if ifc.tsresol is not None:
        opts += _option(o, 9, bytes([ifc.tsresol]))
    if ifc.tsoffset is not None:
        opts += _option(o, 14, struct.pack(o + "q", ifc.tsoffset))
    if opts:
        opts += _option(o, 0, b"")
    return _block(o, 1, struct.pack(o + "HHI", ifc.linktype, 0, ifc.snaplen) + opts)


def epb(ifid: int, ts: int, data: bytes, big: bool = False, caplen: int | None = None) -> bytes:
    o = ">" if big else "<"
    cap = len(data) if caplen is None else caplen
    return _block(o, 6, struct.pack(o + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, cap, len(data)) + data)


def obsolete_pb(ifid: int, ts: int, data: bytes, big: bool = False) -> bytes:
    o = ">" if big else "<"
    return _block(o, 2, struct.pack(o + "HHIIII", ifid, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data)


def spb(data: bytes, big: bool = False) -> bytes:
    o = ">" if big else "<"
    return _block(o, 3, struct.pack(o + "I", len(data)) + data)


def unknown_block(big: bool = False) -> bytes:
    o = ">" if big else "<"
    return _block(o, 0x00000BAD, b"skip me, I am a custom block") + _block(o, 5, struct.pack(o + "IIII", 0, 0, 0, 0))


def libpcap_packets(path: str) -> tuple[list[Packet], str | None]:
    """Every packet libpcap delivers, one at a time, and its error (or None at a clean end)."""
    out: list[Packet] = []
    try:
        reader = pcapy.open_offline(path)
        linktype = reader.datalink()
        while True:
            hdr, data = reader.next()
            if hdr is None:
                return out, None
            sec, usec = hdr.getts()
            out.append((sec & 0xFFFFFFFF, usec, hdr.getcaplen(), bytes(data), linktype))
    except pcapy.PcapError as exc:
        return out, str(exc)


def packets_of(batches) -> list[Packet]:
    out = []
    for raw in batches:
        buf = bytes(raw.buf)
        for sec, usec, off, cap in raw.meta.tolist():
            out.append((sec, usec, cap, buf[off:off + cap], raw.linktype))
    return out


def walked(path: str, stream_chunk: int | None = None, compiled: bool = True, batch_size: int = 4,
           data: bytes | None = None) -> tuple[list[Packet], list[int] | None, str | None]:
    """What wirewatch's reader gives: (packets, sub-microsecond ns per packet or None, error).
    Mapped unless `stream_chunk` is given (then read from `data` as a stream in chunks of that size)."""
    subs: list[int] = []
    batches = []
    if stream_chunk is None:
        it = sources.mapped_batches(path, batch_size, compiled)
    else:
        if data is None:
            with open(path, "rb") as fh:
                data = fh.read()
        it = sources.stream_batches(path, io.BytesIO(data), batch_size, compiled, chunk=stream_chunk)
    error = None
    try:
        with native_paths(compiled):  # the compiled walker as built, under WIREWATCH_PURE_NUMPY=1 too
            for raw in it:
                batches.append(raw)
                subs += raw.sub_usec.tolist() if raw.sub_usec is not None else [0] * len(raw.meta)
    except CaptureError as exc:
        error = str(exc)
    return packets_of(batches), subs, error
