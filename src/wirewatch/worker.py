"""A share of the detectors in a second process, for `wirewatch read`.

A machine with two cores reads a capture in about the time the slower half of the work
takes. The worker is forked before the first packet with the engine's still-fresh detectors
of WORKER_SHARE. The engine alone reads and decodes the input and cuts the time slices; it
copies each slice's columns into one of OPEN_SLICES shared mappings (`SliceSlot`, one slice
large each) and tells the worker, which runs its share of the detectors on that slice in
place and sends back the slice's findings. The engine's own detectors read the same shared
copy. A slice is settled (Engine._settle_oldest: ring, talkers, alert manager, sinks) once the
engine has run its own detectors on the slice after it, so the worker can be a slice behind
and its half overlaps the engine's detectors and reading. In the engine a RemoteDetector
stands in for each of the worker's detectors, in registry order, and answers with the
findings its detector made on the same slice; expiry and the end of input are passed on in
order. So everything after the detectors (alert manager, sinks) sees what one process would
have given it, in the same order: the same alerts. The price is a copy of each slice (114
bytes a packet) and the worker's own memory; the slots' pages count in both processes'
resident sets.

WORKER_SHARE is the split: the detectors that read the per-batch conversation and reply
classifiers (classify/conversations.py, classify/replies.py) go to the worker, so each
classifier runs in one process only, and unusual_protocol; the handshake tracker's readers
(suspicious_port, syn_flood, failed_handshake) and blacklist stay with the engine, which also
reads and decodes, and keeps the packet ring, the top talkers and the timeline. On the mixed
reference capture the two halves cost about the same; on bulk transfers the engine's reading
is the longer half.

The worker never writes anything but its pipe (and a detector's failure line on stderr); it
leaves with os._exit, so no buffer or handler it inherited runs twice.
"""

from __future__ import annotations

import mmap
import os
import pickle
import resource
import signal
import sys
from typing import IO, Any

import numpy as np

from .config import Config
from .decode import COLUMN_DTYPES, PacketBatch
from .detect import Finding
from .engine import OPEN_SLICES, Engine
from .slices import join

WORKER_SHARE = frozenset({"port_scan", "host_sweep", "distributed_scan", "traffic_burst", "unusual_protocol"})
ALIGN = 64  # each column of the slot starts on its own cache line


class WorkerLost(RuntimeError):
    """The worker ended before it sent what the engine waits for."""


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def wanted(cfg: Config) -> bool:
    """Whether to split: general.workers (0 = two processes when two CPUs are ours) and a
    share to split off."""
    workers = cfg.general.workers or (2 if usable_cpus() >= 2 else 1)
    return workers >= 2 and any(getattr(cfg.detect, name).enabled for name in WORKER_SHARE)


class SliceSlot:
    """One slice's columns in a mapping the engine and the worker share (made before the fork):
    the engine writes a slice, both read it in place, and the engine writes the slot again only
    after the worker sent the findings of the slice in it and the engine settled it."""

    def __init__(self, rows: int):
        self.rows = rows
        self.offsets: dict[str, int] = {}
        size = 0
        for name, dtype in COLUMN_DTYPES.items():
            self.offsets[name] = size
            size += -(-rows * np.dtype(dtype).itemsize // ALIGN) * ALIGN
        self.mapping = mmap.mmap(-1, max(size, 1))  # anonymous and shared: the child sees the parent's writes

    def column(self, name: str, n: int) -> np.ndarray:
        return np.frombuffer(self.mapping, COLUMN_DTYPES[name], n, self.offsets[name])

    def put(self, batch: PacketBatch) -> None:
        n = len(batch)
        for name in COLUMN_DTYPES:
            self.column(name, n)[:] = getattr(batch, name)

    def batch(self, n: int, seq: int) -> PacketBatch:
        """The slice as the detectors see it, the worker's and the engine's own: read-only views
        of the slot."""
        cols: dict[str, Any] = {}
        for name in COLUMN_DTYPES:
            col = self.column(name, n)
            col.flags.writeable = False
            cols[name] = col
        return PacketBatch(**cols, seq=seq)


def split(engine: Engine) -> WorkerLink:
    """Fork the worker with the engine's detectors of WORKER_SHARE (still fresh: call before
    the first packet) and put RemoteDetectors in their place."""
    share = [i for i, det in enumerate(engine.detectors) if det.name in WORKER_SHARE]
    slots = [SliceSlot(engine.slice_packets) for _ in range(OPEN_SLICES)]  # a slice open in the engine keeps its slot
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # else the child's copy of a buffer could come out twice
    down_r, down_w = os.pipe()  # engine -> worker: slices, expiry, the end
    up_r, up_w = os.pipe()  # worker -> engine: findings
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(down_w)
        os.close(up_r)
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the engine reports, the worker just ends
            with os.fdopen(down_r, "rb", buffering=1 << 16) as inp, os.fdopen(up_w, "wb", buffering=1 << 16) as out:
                code = _Worker(engine, share, slots, inp, out).run()
        except BrokenPipeError:  # the engine stopped reading: it ended first
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported by the engine as lost detectors
            print(f"wirewatch: detector worker failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            os._exit(code)
    os.close(down_r)
    os.close(up_w)
    link = WorkerLink(pid, os.fdopen(up_r, "rb", buffering=1 << 16), os.fdopen(down_w, "wb", buffering=1 << 16),
                      slots)
    for i in share:
        engine.detectors[i] = RemoteDetector(engine.detectors[i].name, i, link)
    engine.slicer.join = link.join
    return link


class _Worker:
    """The worker's loop: the engine's messages in order, its share's detectors, a message back
    per slice and at the end."""

    def __init__(self, engine: Engine, share: list[int], slots: list[SliceSlot], inp: IO[bytes], out: IO[bytes]):
        self.detectors = {i: engine.detectors[i] for i in share}
        self.slots = slots
        self.inp = inp
        self.out = out
        self.errors: dict[str, int] = {}

    def run(self) -> int:
        while True:
            try:
                kind, *args = pickle.load(self.inp)
            except EOFError:  # the engine ended without an end of input (an error, Ctrl-C)
                return 0
            if kind == "slice":
                seq, n, columns = args
                batch = self.slots[seq % len(self.slots)].batch(n, seq) if columns is None else PacketBatch(**columns, seq=seq)
                self._send(("slice", seq, self._call("observe", batch)))
            elif kind == "expire":
                index, now = args
                self._call("expire", now, only=index)
            else:  # "finish": the end of input, at the engine's last packet time (None: no packet)
                now = args[0]
                self._send(("finish", self._call("finish", now) if now is not None else {}))
                near = self._call("near_misses", now) if now is not None else {}
                stats = {i: det.stats() for i, det in self.detectors.items()}
                usage = resource.getrusage(resource.RUSAGE_SELF)
                self._send(("end", {"near_misses": near, "stats": stats, "component_errors": self.errors,
                                    "peak_rss_kib": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}))
                return 0

    def _call(self, method: str, *args: Any, only: int | None = None) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for i, det in self.detectors.items():
            if only is not None and i != only:
                continue
            try:
                got = getattr(det, method)(*args)
            except Exception as exc:  # noqa: BLE001 - as the engine: logged once, counted, not fatal
                what = f"detector {det.name}" + ("" if method in ("observe", "finish", "expire") else f" {method.replace('_', ' ')}")  # as the engine names it
                if what not in self.errors:
                    print(f"wirewatch: {what} failed: {type(exc).__name__}: {exc} (continuing)",
                          file=sys.stderr, flush=True)
                self.errors[what] = self.errors.get(what, 0) + 1
                continue
            if got:
                out[i] = got
        return out

    def _send(self, message: tuple[Any, ...]) -> None:
        pickle.dump(message, self.out, protocol=pickle.HIGHEST_PROTOCOL)
        self.out.flush()


class WorkerLink:
    """The engine's end of the two pipes: slices, expiry and the end of input down, each
    slice's findings up."""

    def __init__(self, pid: int, pipe: IO[bytes], down: IO[bytes], slots: list[SliceSlot]):
        self.pid = pid
        self.pipe: IO[bytes] | None = pipe
        self.down: IO[bytes] | None = down
        self.slots = slots  # slice seq goes to slot seq % len(slots)
        self.submitted = -1  # the last slice given to the worker
        self.seq = -1  # the last slice whose findings came back
        self.found: dict[int, dict[int, list[Finding]]] = {}  # per slice not yet asked for: per detector
        self.finished: dict[int, list[Finding]] | None = None
        self.end: dict[str, Any] | None = None
        self.status: int | None = None
        self.lost = ""
        self.placed: PacketBatch | None = None  # the slice join wrote into its slot, not yet submitted

    def submit(self, batch: PacketBatch) -> PacketBatch:
        """Give the worker slice `batch.seq` (once, whichever stand-in asks first); returns the
        slice as the worker reads it (read-only views of its slot, or `batch` itself). Its slot is
        written only once the worker has answered the slice that used it before: it reads it in
        place."""
        if batch.seq <= self.submitted or self.down is None:
            return batch
        self.submitted = batch.seq
        placed, self.placed = self.placed, None
        try:
            self._free_slot(batch.seq)
            slot = self.slots[batch.seq % len(self.slots)]
            if len(batch) > slot.rows:  # a slice longer than the slot was made for (the limit raised after the fork)
                self._send(("slice", batch.seq, len(batch),
                            {name: np.ascontiguousarray(getattr(batch, name)) for name in COLUMN_DTYPES}))
                return batch
            if batch is not placed:
                slot.put(batch)
            self._send(("slice", batch.seq, len(batch), None))
        except WorkerLost:
            return batch  # each stand-in says so when it asks for its findings
        shared = slot.batch(len(batch), batch.seq)
        shared.errors, shared.non_ip = batch.errors, batch.non_ip
        return shared

    def join(self, parts: list[PacketBatch]) -> PacketBatch:
        """The reads of the next slice written straight into the slot the worker will read it
        from (the engine's TimeSlicer.join), instead of concatenated first and then copied:
        `submit` then only tells the worker. The slot is free once the worker answered the
        slice before it there and the engine settled that one, which it did before cutting
        this slice."""
        seq = self.submitted + 1
        slot = self.slots[seq % len(self.slots)]
        if self.down is None or sum(len(p) for p in parts) > slot.rows:
            return join(parts)
        try:
            self._free_slot(seq)
        except WorkerLost:
            return join(parts)  # submit finds it lost too
        self.placed = PacketBatch.concat(parts, into=slot.column)
        return self.placed

    def _free_slot(self, seq: int) -> None:
        """Wait until the worker has answered the slice that used slice `seq`'s slot before."""
        while self.seq < seq - len(self.slots):
            self._take_slice()

    def observed(self, seq: int, index: int) -> list[Finding]:
        """What detector `index` found in slice `seq` (the engine asks in slice order)."""
        while self.seq < seq:
            self._take_slice()
        for old in [k for k in self.found if k < seq]:  # the engine asks in slice order: done with
            del self.found[old]
        return list(self.found.get(seq, {}).get(index, ()))

    def expire(self, index: int, now: float) -> None:
        if self.down is not None:
            self._send(("expire", index, now))

    def finish(self, index: int, now: float | None) -> list[Finding]:
        """The end of input: what detector `index` held back, and the worker's last report."""
        if self.finished is None:
            while self.seq < self.submitted:  # the engine stopped before it asked for them
                self._take_slice()
            self._send(("finish", now))
            kind, found = self._receive()
            if kind != "finish":
                raise WorkerLost(f"the detector worker sent {kind!r} where the engine expected the end of input")
            self.finished = found
            self.end = self._receive()[1]
        return list(self.finished.pop(index, ()))  # once: the engine may flush again (close after finish)

    def ended(self, key: str, index: int, default: Any) -> Any:
        """A value of the worker's last message (its detectors' stats, near misses), or
        `default` before the input ended."""
        return default if self.end is None else self.end[key].get(index, default)

    def report(self) -> dict[str, Any]:
        """The worker in the run summary: its pid, exit status, CPU seconds and peak RSS, and the
        engine's own peak RSS beside it (the two processes' memory is their sum)."""
        out: dict[str, Any] = {"pid": self.pid, "status": self.status,
                               "engine_peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        if self.end is not None:
            out |= {"cpu_s": round(self.end["cpu_s"], 3), "peak_rss_kib": self.end["peak_rss_kib"]}
        return out

    def component_errors(self) -> dict[str, int]:
        return dict(self.end["component_errors"]) if self.end is not None else {}

    def _take_slice(self) -> None:
        kind, *rest = self._receive()
        if kind != "slice":
            raise WorkerLost(f"the detector worker sent {kind!r} where the engine expected slice {self.seq + 1}")
        seq, found = rest
        self.found[seq] = found
        self.seq = seq

    def _send(self, message: tuple[Any, ...]) -> None:
        if self.down is None:
            raise WorkerLost(self.lost or "the detector worker has ended")
        try:
            pickle.dump(message, self.down, protocol=pickle.HIGHEST_PROTOCOL)
            self.down.flush()
        except OSError as exc:  # BrokenPipeError: it ended
            raise self._lose() from exc

    def _receive(self) -> tuple[Any, ...]:
        if self.pipe is None:
            raise WorkerLost(self.lost or "the detector worker has ended")
        try:
            message: tuple[Any, ...] = pickle.load(self.pipe)
        except (EOFError, pickle.UnpicklingError, OSError) as exc:
            raise self._lose() from exc
        return message

    def _lose(self) -> WorkerLost:
        self._reap()
        self.lost = f"the detector worker ended early (exit status {self.status}); its detectors saw no more"
        return WorkerLost(self.lost)

    def close(self) -> None:
        """Let the worker end and reap it. Before the end of input (no packet, or the engine
        stopped first) it is told the input ended, so its last report is there all the same."""
        if self.end is None and self.down is not None:
            try:
                self.finish(-1, None)
            except WorkerLost:
                pass  # reaped on the way
        self._reap()

    def _reap(self) -> None:
        if self.pipe is None and self.down is None:
            return
        for pipe in (self.down, self.pipe):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:  # the worker is gone: what was buffered for it cannot go
                    pass
        self.down = self.pipe = None
        _, status = os.waitpid(self.pid, 0)
        self.status = os.waitstatus_to_exitcode(status)


class RemoteDetector:
    """The engine's stand-in for a detector that runs in the worker."""

    deferred = True  # given each slice first, asked for its findings last (Engine._observe)

    def __init__(self, name: str, index: int, link: WorkerLink):
        self.name = name
        self.index = index
        self.link = link

    def submit(self, batch: PacketBatch) -> PacketBatch:
        return self.link.submit(batch)

    def observe(self, batch: Any) -> list[Finding]:
        return self.link.observed(batch.seq, self.index)

    def finish(self, now: float) -> list[Finding]:
        return self.link.finish(self.index, now)

    def tick(self, now: float) -> list[Finding]:
        return []  # files only: no clock

    def expire(self, now: float) -> None:
        """The worker expires its detector's state at the same packet time, in the same order."""
        self.link.expire(self.index, now)

    def reconfigure(self, cfg: Any, root: Any = None) -> None:
        """Files only: no SIGHUP reload."""

    def stats(self) -> dict[str, int]:
        return dict(self.link.ended("stats", self.index, {}))

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        return list(self.link.ended("near_misses", self.index, []))
