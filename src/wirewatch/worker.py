"""A share of the detectors in a second process, for `wirewatch read` of capture files.

A machine with two cores reads a file in about the time the slower half of the work takes:
the worker is forked before the first packet, reads the same files itself, decodes them and
cuts the same time slices (slices.py), runs its share of the detectors on each slice and sends
back that slice's findings. In the engine a RemoteDetector stands in for each of those
detectors, in registry order, and answers with the findings its detector made on the same
slice. So everything after the detectors (alert manager, sinks) sees what one process would
have given it, in the same order: the same alerts. The price is a second decode of the file
(~10 % of the CPU time) and the worker's own memory.

WORKER_SHARE is the split: the detectors that read the per-batch conversation and reply
classifiers (classify/conversations.py, classify/replies.py) go to the worker, so each
classifier runs in one process only; the handshake tracker's readers (suspicious_port,
syn_flood, failed_handshake), blacklist and unusual_protocol stay with the engine, which also
keeps the packet ring, the top talkers and the timeline. On the mixed reference capture the
two halves cost about the same.

The worker never writes anything but its pipe (and a detector's failure line on stderr); it
leaves with os._exit, so no buffer or handler it inherited runs twice.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import sys
from collections.abc import Sequence
from typing import IO, Any

from .capture.pcapfile import CaptureError, read_batches
from .config import Config
from .detect import Finding
from .engine import Engine
from .slices import ExpiryClock, TimeSlicer, decode_raw

WORKER_SHARE = frozenset({"port_scan", "host_sweep", "distributed_scan", "traffic_burst"})


class WorkerLost(RuntimeError):
    """The worker ended before it sent what the engine waits for."""


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def wanted(cfg: Config, files: Sequence[str]) -> bool:
    """Whether to split: general.workers (0 = two processes when two CPUs are ours), only
    regular files (standard input and pipes can be read once), and a share to split off."""
    workers = cfg.general.workers or (2 if usable_cpus() >= 2 else 1)
    if workers < 2 or not files or not all(f != "-" and os.path.isfile(f) for f in files):
        return False
    return any(getattr(cfg.detect, name).enabled for name in WORKER_SHARE)


def split(engine: Engine, files: Sequence[str]) -> WorkerLink:
    """Fork the worker with the engine's detectors of WORKER_SHARE (still fresh: call before
    the first packet) and put RemoteDetectors in their place."""
    share = [i for i, det in enumerate(engine.detectors) if det.name in WORKER_SHARE]
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # else the child's copy of a buffer could come out twice
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(rfd)
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the engine reports, the worker just ends
            with os.fdopen(wfd, "wb", buffering=1 << 16) as out:
                code = _Worker(engine, share, files, out).run()
        except BrokenPipeError:  # the engine stopped reading: it ended first
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported by the engine as lost detectors
            print(f"wirewatch: detector worker failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            os._exit(code)
    os.close(wfd)
    link = WorkerLink(pid, os.fdopen(rfd, "rb", buffering=1 << 16), share)
    for i in share:
        engine.detectors[i] = RemoteDetector(engine.detectors[i].name, i, link)
    return link


class _Worker:
    """The worker's loop: the engine's slices, its share's detectors, a message per slice."""

    def __init__(self, engine: Engine, share: list[int], files: Sequence[str], out: IO[bytes]):
        self.cfg = engine.cfg
        self.detectors = {i: engine.detectors[i] for i in share}
        self.files = files
        self.out = out
        self.slicer = TimeSlicer(self.cfg.general.expire_interval, engine.slice_packets)
        self.clock = ExpiryClock(self.cfg.general.expire_interval)
        self.seq = 0
        self.last_ts: float | None = None
        self.errors: dict[str, int] = {}

    def run(self) -> int:
        depth = self.cfg.decode.max_tunnel_depth
        for path in self.files:
            try:
                for raw in read_batches(path, self.cfg.general.batch_size):
                    for part in self.slicer.add(decode_raw(raw, depth)):
                        self._analyse(part)
                        del part  # as Engine.process: not kept while the next slice is built
            except CaptureError:
                pass  # the engine reads the same file and says so
        last = self.slicer.take()
        if last is not None:
            self._analyse(last)
        self._send(("finish", self._call("finish", self.last_ts) if self.last_ts is not None else {}))
        near = self._call("near_misses", self.last_ts) if self.last_ts is not None else {}
        stats = {i: det.stats() for i, det in self.detectors.items()}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self._send(("end", {"near_misses": near, "stats": stats, "component_errors": self.errors,
                            "peak_rss_kib": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}))
        return 0

    def _analyse(self, batch: Any) -> None:
        """Engine._process_slice for this share: the same slice numbers and expiry times."""
        if not len(batch):
            return
        hi = float(batch.ts.max())
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        batch.seq = self.seq
        self._send(("slice", self.seq, self._call("observe", batch)))
        self.seq += 1
        if self.clock.due(hi):
            self._call("expire", hi)

    def _call(self, method: str, *args: Any) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for i, det in self.detectors.items():
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
    """The engine's end of the pipe: each slice's findings as the worker sends them."""

    def __init__(self, pid: int, pipe: IO[bytes], share: list[int]):
        self.pid = pid
        self.pipe: IO[bytes] | None = pipe
        self.share = share
        self.seq = -1
        self.found: dict[int, list[Finding]] = {}
        self.finished: dict[int, list[Finding]] | None = None
        self.end: dict[str, Any] | None = None
        self.status: int | None = None
        self.lost = ""

    def observed(self, seq: int, index: int) -> list[Finding]:
        """What detector `index` found in slice `seq` (the engine asks in slice order)."""
        while self.seq < seq:
            kind, *rest = self._receive()
            if kind != "slice":
                raise WorkerLost(f"the detector worker ended at slice {self.seq + 1}, the engine is at {seq}")
            self.seq, self.found = rest
        return list(self.found.get(index, ()))

    def finish(self, index: int) -> list[Finding]:
        if self.finished is None:
            kind, found = self._receive()
            if kind != "finish":
                raise WorkerLost(f"the detector worker sent {kind!r} where the engine expected the end of input")
            self.finished = found
            self.end = self._receive()[1]
            self.close()
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

    def _receive(self) -> tuple[Any, ...]:
        if self.pipe is None:
            raise WorkerLost(self.lost or "the detector worker has ended")
        try:
            message: tuple[Any, ...] = pickle.load(self.pipe)
        except (EOFError, pickle.UnpicklingError, OSError) as exc:
            self.close()
            self.lost = f"the detector worker ended early (exit status {self.status}); its detectors saw no more"
            raise WorkerLost(self.lost) from exc
        return message

    def close(self) -> None:
        """Stop listening and reap the worker (ended, or told to end: the engine stopped first)."""
        if self.pipe is None:
            return
        self.pipe.close()
        self.pipe = None
        if self.end is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(self.pid, 0)
        self.status = os.waitstatus_to_exitcode(status)


class RemoteDetector:
    """The engine's stand-in for a detector that runs in the worker."""

    deferred = True  # the engine asks it after its own detectors (Engine._call_detectors)

    def __init__(self, name: str, index: int, link: WorkerLink):
        self.name = name
        self.index = index
        self.link = link

    def observe(self, batch: Any) -> list[Finding]:
        return self.link.observed(batch.seq, self.index)

    def finish(self, now: float) -> list[Finding]:
        return self.link.finish(self.index)

    def tick(self, now: float) -> list[Finding]:
        return []  # files only: no clock

    def expire(self, now: float) -> None:
        """The worker expires its detectors' state at the same packet times."""

    def reconfigure(self, cfg: Any, root: Any = None) -> None:
        """Files only: no SIGHUP reload."""

    def stats(self) -> dict[str, int]:
        return dict(self.link.ended("stats", self.index, {}))

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        return list(self.link.ended("near_misses", self.index, []))

