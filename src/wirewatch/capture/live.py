"""Live capture through libpcap: batched, non-blocking reads, kernel drop statistics.

The handle is non-blocking and polled with select() on its file descriptor, so an idle
wire returns at once (empty) and packets arrive within about the handle's timeout:
stats, expiry and signals keep working when nothing is on the wire (DESIGN.md).

The read loop is compiled (native/pcapwalk.c, libpcap loaded at run time): pcap_dispatch
copies each packet once from the kernel's ring into one of two preallocated buffers, with
a meta row per packet and no Python object per packet. pcapy-ng's next_batch (a new bytes
object per batch) serves when the compiled module or libpcap is missing, or with
WIREWATCH_LIVE_READER=pcapy.

The default snapshot is headers only: `decode.headers_snaplen` bytes (832 at the default tunnel
depth), enough for the deepest header chain the decoder reads; `--snaplen` overrides it.
"""

from __future__ import annotations

import os
import select
from dataclasses import dataclass, field

import numpy as np
import pcapy

from .. import native
from ..decode import headers_snaplen
from ..settings import Frozen
from .pcapfile import CaptureError, RawBatch

POLL_S = 0.2
BUFFER_MAX = 16 * 1024 * 1024  # bytes of each of the two batch buffers of the compiled loop, at most
_native = native.load("_pcapwalk")


def compiled_loop() -> bool:
    """Whether live capture reads through the compiled dispatch loop."""
    return (_native is not None and hasattr(_native, "live_available") and _native.live_available()
            and os.environ.get("WIREWATCH_LIVE_READER") != "pcapy")


@dataclass(frozen=True, eq=False, repr=False)
class LiveOptions(Frozen):
    interface: str
    bpf: str = ""
    snaplen: int = field(default_factory=headers_snaplen)
    promisc: bool = True
    buffer_mb: int = 64
    timeout_ms: int = 100
    batch_size: int = 4096


def interfaces() -> list[str]:
    try:
        return list(pcapy.findalldevs())
    except pcapy.PcapError:
        return []


def _explain(iface: str, exc: Exception) -> str:
    text = str(exc)
    low = text.lower()
    if "permission" in low or "not permitted" in low or "socket: operation" in low:
        return f"live capture needs root or CAP_NET_RAW on {iface}"
    if "no such device" in low or "doesn't exist" in low or "no such" in low:
        known = ", ".join(interfaces()) or "none visible"
        return f"unknown interface {iface!r} (interfaces: {known})"
    return f"{iface}: cannot capture: {text}"


PCAP_ERRORS = {-5: "no such device", -8: "permission denied", -9: "interface is not up",
               -4: "already activated", -7: "monitor mode not supported", -6: "monitor mode not supported"}


def _activate_error(iface: str, status: int) -> str:
    if status == -8:
        return f"live capture needs root or CAP_NET_RAW on {iface}"
    if status == -5:
        return f"unknown interface {iface!r} (interfaces: {', '.join(interfaces()) or 'none visible'})"
    return f"{iface}: cannot capture: {PCAP_ERRORS.get(status, f'pcap error {status}')}"


class LiveSource:
    """One capture handle on an interface (or `any`)."""

    def __init__(self, opts: LiveOptions):
        self.opts = opts
        if opts.interface != "any" and opts.interface not in interfaces() and interfaces():
            known = ", ".join(interfaces())
            raise CaptureError(f"unknown interface {opts.interface!r} (interfaces: {known})")
        self.compiled = compiled_loop()
        if self.compiled:
            self._open_compiled(opts)
        else:
            self._open_pcapy(opts)

    def _open_compiled(self, opts: LiveOptions) -> None:
        handle, status, message = _native.live_open(  # type: ignore[union-attr]
            opts.interface, opts.snaplen, 1 if opts.promisc else 0, opts.timeout_ms, opts.buffer_mb * 1024 * 1024,
            opts.bpf)
        if handle is None:
            if status == -100:
                raise CaptureError(f"--bpf {opts.bpf!r}: {message}")
            if status == -1:
                raise CaptureError(_explain(opts.interface, OSError(message)))
            raise CaptureError(_activate_error(opts.interface, status))
        self.handle = handle
        self.linktype = _native.live_datalink(handle)  # type: ignore[union-attr]
        self.fd = _native.live_fd(handle)  # type: ignore[union-attr]
        size = max(opts.snaplen, min(BUFFER_MAX, opts.batch_size * opts.snaplen))
        # two of each: a batch handed out stays intact while the next one is read
        self._bufs = [bytearray(size), bytearray(size)]
        self._metas = [np.empty((opts.batch_size, 4), np.uint32) for _ in range(2)]
        self._wires = [np.empty(opts.batch_size, np.uint32) for _ in range(2)]
        self._turn = 0

    def _open_pcapy(self, opts: LiveOptions) -> None:
        try:
            h = pcapy.create(opts.interface)
            h.set_snaplen(opts.snaplen)
            h.set_promisc(1 if opts.promisc else 0)
            h.set_timeout(opts.timeout_ms)
            h.set_buffer_size(opts.buffer_mb * 1024 * 1024)
            status = h.activate()  # pcapy-ng returns pcap_activate()'s status instead of raising
        except pcapy.PcapError as exc:
            raise CaptureError(_explain(opts.interface, exc)) from None
        if status is not None and status < 0:
            raise CaptureError(_activate_error(opts.interface, status))
        if opts.bpf:
            try:
                h.setfilter(opts.bpf)
            except pcapy.PcapError as exc:
                raise CaptureError(f"--bpf {opts.bpf!r}: {exc}") from None
        h.setnonblock(1)
        self.handle = h
        self.linktype = h.datalink()
        self.fd = h.getfd()

    def read(self) -> RawBatch:
        """Up to batch_size packets; empty after ~POLL_S when the wire is idle."""
        ready, _, _ = select.select([self.fd], [], [], POLL_S)
        if not ready:
            return RawBatch(b"", np.zeros((0, 4), np.uint32), self.linktype)
        return self.drain()

    def drain(self) -> RawBatch:
        if not self.compiled:
            buf, meta = self.handle.next_batch(self.opts.batch_size)
            return RawBatch(buf, np.frombuffer(meta, dtype=np.uint32).reshape(-1, 4), self.linktype)
        turn = self._turn
        self._turn ^= 1
        buf, meta, wire = self._bufs[turn], self._metas[turn], self._wires[turn]
        try:
            n, used = _native.live_dispatch(  # type: ignore[union-attr]
                self.handle, buf, meta, wire, self.opts.snaplen)
        except OSError as exc:
            raise CaptureError(f"{self.opts.interface}: {exc}") from None
        return RawBatch(memoryview(buf)[:used], meta[:n], self.linktype, wire_len=wire[:n])

    def kernel_stats(self) -> tuple[int, int, int]:
        """(packets received, dropped by the kernel, dropped by the interface)."""
        if self.compiled:
            got = _native.live_stats(self.handle)  # type: ignore[union-attr]
            return (0, 0, 0) if got is None else (int(got[0]), int(got[1]), int(got[2]))
        try:
            recv, drop, ifdrop = self.handle.stats()
        except pcapy.PcapError:
            return 0, 0, 0
        return int(recv), int(drop), int(ifdrop)

    def close(self) -> None:
        if self.compiled:
            _native.live_close(self.handle)  # type: ignore[union-attr]
        else:
            self.handle.close()


class ScapySource:
    """Fallback for platforms without libpcap: Scapy's own sockets. Same pipeline, slower."""

    def __init__(self, opts: LiveOptions):
        import scapy.all  # noqa: F401 - sets conf.L2listen for this platform
        from scapy.config import conf

        self.opts = opts
        try:
            self.sock = conf.L2listen(iface=opts.interface, filter=opts.bpf or None)
        except PermissionError:
            raise CaptureError(f"live capture needs root or CAP_NET_RAW on {opts.interface}") from None
        except OSError as exc:
            raise CaptureError(_explain(opts.interface, exc)) from None
        self.linktype = 1
        self.received = 0

    def read(self) -> RawBatch:
        ready, _, _ = select.select([self.sock], [], [], POLL_S)
        return self.drain() if ready else RawBatch(b"", np.zeros((0, 4), np.uint32), self.linktype)

    def drain(self) -> RawBatch:
        frames: list[bytes] = []
        meta: list[tuple[int, int, int, int]] = []
        wire: list[int] = []
        off = 0
        while len(frames) < self.opts.batch_size:
            ready, _, _ = select.select([self.sock], [], [], 0)
            if not ready:
                break
            pkt = self.sock.recv()
            if pkt is None:
                continue
            whole = bytes(pkt)
            raw = whole[: self.opts.snaplen]
            wire.append(len(whole))
            ts = float(pkt.time)
            sec = int(ts)
            meta.append((sec, int(round((ts - sec) * 1e6)) % 1_000_000, off, len(raw)))
            frames.append(raw)
            off += len(raw)
        self.received += len(frames)
        return RawBatch(b"".join(frames), np.array(meta, np.uint32).reshape(-1, 4), self.linktype,
                        wire_len=np.array(wire, np.uint32))

    def kernel_stats(self) -> tuple[int, int, int]:
        return self.received, 0, 0

    def close(self) -> None:
        self.sock.close()


def default_route_interface() -> str | None:
    """The interface of the IPv4 default route (from /proc/net/route), if any."""
    try:
        with open("/proc/net/route") as fh:
            for line in fh.readlines()[1:]:
                parts = line.split()
                if len(parts) > 2 and parts[1] == "00000000":
                    return parts[0]
    except OSError:
        return None
    return None
