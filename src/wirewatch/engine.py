"""Wires source -> decode -> detectors -> alert manager -> sinks, and keeps run statistics.

A detector or sink that raises is logged once and counted, never fatal: one bug must
not blind the sensor.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

import numpy as np

from . import native
from .alerts import AlertManager
from .capture.pcapfile import RawBatch
from .config import Config, sensor_name
from .decode import PacketBatch
from .detect import Detector, Finding, default_detectors
from .detect.blacklist import Blacklist
from .detect.registry import DETECTORS
from .enrich import Enricher, cache_root
from .layer_counts import LayerCounts
from .packet_ring import PacketRing
from .reload import restart_only_changes, running
from .sinks import Sink
from .slices import ExpiryClock, TimeSlicer, decode_raw
from .talkers import TopTalkers
from .timeline import Timeline
from .tunnel_evidence import TunnelEvidence

OPEN_SLICES = 2  # with detectors in the worker: slices analysed here and not yet settled, at most


@dataclass
class RunStats:
    packets: int = 0
    bytes: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    decode_errors: dict[str, int] = field(default_factory=dict)
    non_ip: int = 0
    component_errors: dict[str, int] = field(default_factory=dict)
    muted: int = 0


class Engine:
    def __init__(self, cfg: Config, sinks: Iterable[Sink] = (), detectors: list[Detector] | None = None,
                 log: TextIO | None = None):
        self.cfg = cfg
        native.keep_heap()  # a slice's temporaries reuse the last slice's memory (no page faults)
        self.detectors = default_detectors(cfg) if detectors is None else detectors
        self.sinks = list(sinks)
        a = cfg.alerts
        self.alerts = AlertManager(
            a.cooldown, a.max_identifiers, cfg.general.interface or None,
            figures={s.name: s.figure for s in DETECTORS if s.figure},
            storm_labels={s.name: s.storm_label for s in DETECTORS if s.storm_label},
            escalation_factor=a.escalation_factor, storm_sources=a.storm_sources,
            max_storm_sources=a.max_storm_sources)
        self.sensor = sensor_name(cfg.general)
        self.stats = RunStats()
        self.talkers = TopTalkers()
        self.layers = LayerCounts()
        self.timeline = Timeline()
        self.tunnels = TunnelEvidence(cfg.decode.tunnel_addresses)
        self.log = log or sys.stderr
        self.enricher = Enricher(cfg.enrich, self.log, cache_root(cfg)) if cfg.enrich.enabled else None
        self.expiry = ExpiryClock(cfg.general.expire_interval)
        self.started = time.perf_counter()
        self._finished = False
        self._seq = 0
        # slices analysed by this process's detectors, not yet settled (their findings, packet time, tick)
        self._open: deque[tuple[Callable[[], list[Finding]], float, float, PacketBatch]] = deque()
        self.slicer = TimeSlicer(cfg.general.expire_interval)
        self._fed = 0  # rows fed so far (the ring's frame numbers count them; it adds them as slices are analysed)
        self.packets: PacketRing | None = None  # an alert's packets: begin_file() or keep_packets()
        self.spool: Any = None  # live: alert_pcap.PcapSpool, where those packets are written

    def begin_file(self, path: str) -> None:
        """The batches that follow are frames of this capture file: alerts carry their
        frame numbers (`packets`; output.alert_frames of them)."""
        if self.packets is None and self.cfg.output.alert_frames:
            o = self.cfg.output
            self.packets = PacketRing(o.packet_ring, int(o.packet_ring_mb * 1e6))
        if self.packets is not None:
            self.packets.begin_file(path, self._fed)

    def keep_packets(self) -> None:
        """Live capture: keep recent packets' bytes too, and write each alert's packets to a
        pcap file in output.pcap_dir."""
        from .alert_pcap import PcapSpool  # live only

        o = self.cfg.output
        if not o.alert_frames:
            return
        self.packets = PacketRing(o.packet_ring, int(o.packet_ring_mb * 1e6), keep_bytes=True,
                                  max_raw_bytes=int(o.pcap_ring_mb * 1e6))
        self.spool = PcapSpool(o.pcap_dir, o.pcap_max_files, int(o.pcap_max_mb * 1e6))

    def feed(self, raw: RawBatch) -> list[dict[str, Any]]:
        batch = decode_raw(raw, self.cfg.decode.max_tunnel_depth)
        if self.spool is not None and self.packets is not None:  # live: the rows with their read's bytes
            self.packets.add(batch, (raw.buf, raw.meta, raw.sub_usec, raw.linktype, raw.wire_len))
        self._fed += len(batch)
        return self.process(batch)

    def process(self, batch: PacketBatch) -> list[dict[str, Any]]:
        """Run one decoded batch through the detectors, in time slices of expire_interval
        (slices.TimeSlicer: where the detectors decide depends on packet times and order
        alone). The last slice waits for the next packet in a later slice, `idle()` or `flush()`."""
        alerts: list[dict[str, Any]] = []
        for part in self.slicer.add(batch):
            alerts += self._process_slice(part)
            del part  # else the slice analysed stays while the slicer builds the next one
        return alerts

    @property
    def slice_packets(self) -> int:
        """A time slice is analysed at most this many packets at a time (tests lower it)."""
        return self.slicer.limit

    @slice_packets.setter
    def slice_packets(self, limit: int) -> None:
        self.slicer.limit = limit

    def flush(self) -> list[dict[str, Any]]:
        """Analyse the packets waiting for their time slice to end, let the detectors decide
        what they hold back (`finish`: host_sweep's crossings waiting to tell a monitor from a
        sweep), and let the alert manager decide the probes it holds back for a scan alert of
        the next slice."""
        alerts = self._analyse_pending()
        if self.stats.last_ts is not None:
            decided = self.alerts.ingest(self.tunnels.annotate(self._call_detectors("finish", self.stats.last_ts)),
                                         self.stats.last_ts)
            self._emit(decided)
            alerts += decided
        held = self.alerts.release()
        self._emit(held)
        return alerts + held

    def _analyse_pending(self) -> list[dict[str, Any]]:
        """The waiting slice, analysed and settled."""
        part = self.slicer.take()
        return ([] if part is None else self._process_slice(part)) + self.settle()

    def _process_slice(self, batch: PacketBatch) -> list[dict[str, Any]]:
        s = self.stats
        n = len(batch)
        for k, v in batch.errors.items():
            s.decode_errors[k] = s.decode_errors.get(k, 0) + v
        s.non_ip += batch.non_ip
        if not n:
            return []
        batch.seq = self._seq  # per-batch caches (the shared handshake tracker) key on this
        self._seq += 1
        later = self._deferred
        for i in later:  # the worker starts on this slice while this process does its share
            # RemoteDetector's (not part of the Detector protocol): the slice as the worker reads it,
            # in shared memory, which this process reads too instead of keeping its own copy open
            batch = cast(Any, self.detectors[i]).submit(batch)
        s.packets += n
        s.bytes += int(batch.length.sum(dtype=np.int64))
        lo, hi = float(batch.ts.min()), float(batch.ts.max())
        s.first_ts = lo if s.first_ts is None else min(s.first_ts, lo)
        s.last_ts = hi if s.last_ts is None else max(s.last_ts, hi)
        tick = float(np.floor(batch.ts[0] / self.cfg.general.expire_interval))  # the slice's, all its rows'
        collect = self._observe(batch, later)
        self._maybe_expire(hi)  # the detectors' state, in slice order (the worker's: down its pipe)
        self._open.append((collect, hi, tick, batch))
        alerts: list[dict[str, Any]] = []
        while len(self._open) > (OPEN_SLICES - 1 if later else 0):
            alerts += self._settle_oldest()
        return alerts

    def settle(self) -> list[dict[str, Any]]:
        """Settle every open slice (the end of input; a reader that may wait for input, a pipe,
        after each read)."""
        alerts: list[dict[str, Any]] = []
        while self._open:
            alerts += self._settle_oldest()
        return alerts

    def _settle_oldest(self) -> list[dict[str, Any]]:
        """The oldest open slice's end: its packets to the ring, the talkers, the timeline and the
        tunnel evidence, its findings (the worker's too) to the alert manager and the sinks. With
        detectors in the worker, up to OPEN_SLICES slices stay open, so the worker's half overlaps
        the engine's own detectors and its reading of what follows. What a slice's settling
        reads (the ring, the tunnel evidence, the alert manager) sees exactly the slices before
        it, and the detectors saw the slices in order, expiry included: the alerts of one process."""
        collect, hi, tick, batch = self._open.popleft()
        if self.packets is not None and self.spool is None:
            # a capture file: the ring takes a slice's rows when it is analysed, so an alert finds
            # (and misses, once evicted) the same packets wherever the reader cut its batches
            self.packets.add(batch)
        self.talkers.add(batch)
        self.layers.add(batch)
        self.timeline.add(batch.ts)
        self.tunnels.observe(batch)
        alerts = self.alerts.ingest(self.tunnels.annotate(collect()), hi, tick)
        self._emit(alerts)
        return alerts

    def _maybe_expire(self, now: float) -> None:
        if self.expiry.due(now):
            self._call_detectors("expire", now)

    def _emit(self, alerts: list[dict[str, Any]]) -> None:
        """Hand alerts to the sinks. Every sink's `filter` (the store's mutes) marks muted
        alerts first; those go only to sinks that keep them (`keeps_muted`)."""
        if not alerts:
            return
        for a in alerts:
            a["host"] = self.sensor  # EVE's sensor name: which of many sensors saw it
        if self.packets is not None:
            self._attach_packets(alerts)
        if self.enricher is not None:  # who owns the addresses: per alert, never per packet
            self.enricher.annotate(alerts)
        for sink in self.sinks:
            try:
                alerts = sink.filter(alerts)
            except Exception as exc:  # noqa: BLE001
                self._failed(f"sink {sink.name} mutes", exc)
        loud = [a for a in alerts if not a.get("muted")]
        self.stats.muted += len(alerts) - len(loud)
        for sink in self.sinks:
            try:
                batch = alerts if sink.keeps_muted else loud
                if batch:
                    sink.write(batch)
            except Exception as exc:  # noqa: BLE001 - a broken sink is logged, not fatal
                self._failed(f"sink {sink.name}", exc)

    def _attach_packets(self, alerts: list[dict[str, Any]]) -> None:
        """Each alert's packets from the ring: frame numbers in its capture file, or live a
        pcap of them in output.pcap_dir (packet_ring.py)."""
        ring, limit = self.packets, self.cfg.output.alert_frames
        assert ring is not None
        for a in alerts:
            try:
                rows, files, matched, partial = ring.match(a, limit)
                if self.spool is not None:
                    held = ring.packets(rows)
                    info: dict[str, Any] = {"pcap": self.spool.write(a, held), "count": len(held)}
                else:
                    info = ring.frames(rows, files)
                info["matched"] = matched
                if partial:
                    info["partial"] = True
                a["packets"] = info
            except Exception as exc:  # noqa: BLE001 - the alert goes out without its packets
                if self.spool is not None:
                    self.spool.failed += 1
                self._failed("alert packets", exc)

    @property
    def _deferred(self) -> list[int]:
        return [i for i, det in enumerate(self.detectors) if getattr(det, "deferred", False)]

    def _observe(self, batch: PacketBatch, later: list[int]) -> Callable[[], list[Finding]]:
        """`observe` of one slice by this process's own detectors; the worker's (`later`, given the
        slice already) are asked by what this returns, which gives all the findings in registry
        order once the worker's have come (Engine.settle)."""
        found: dict[int, list[Finding]] = {}
        for i in range(len(self.detectors)):
            if i not in later:
                self._ask(i, "observe", (batch,), found)

        def collect() -> list[Finding]:
            for i in later:
                self._ask(i, "observe", (batch,), found)
            return [f for i in sorted(found) for f in found[i]]
        return collect

    def _ask(self, i: int, method: str, args: tuple[Any, ...], found: dict[int, list[Finding]]) -> None:
        det = self.detectors[i]
        try:
            found[i] = getattr(det, method)(*args) or []
        except Exception as exc:  # noqa: BLE001 - a broken detector is logged, not fatal
            self._failed(f"detector {det.name}", exc)

    def _call_detectors(self, method: str, *args: Any) -> list[Finding]:
        """Call `method` (observe, tick or expire: see detect.base.Detector) on every detector
        and collect the findings it returns, in registry order; a detector that raises is
        logged and counted, not fatal. Detectors that run in the worker (`deferred`: their
        findings come down a pipe) are asked last (`observe` goes through _observe)."""
        found: dict[int, list[Finding]] = {}
        for i in sorted(range(len(self.detectors)), key=lambda i: getattr(self.detectors[i], "deferred", False)):
            self._ask(i, method, args, found)
        return [f for i in sorted(found) for f in found[i]]

    def _failed(self, what: str, exc: BaseException) -> None:
        errs = self.stats.component_errors
        if what not in errs:
            print(f"wirewatch: {what} failed: {type(exc).__name__}: {exc} (continuing)", file=self.log)
        errs[what] = errs.get(what, 0) + 1

    def idle(self, now: float) -> None:
        """No packets arrived (live capture only, where packet time is wall time): analyse the
        slice that waits once the clock has left it (no packet of it can come any more, so it is
        cut where a capture of the same packets would be), decide the probes held back once the
        slice after theirs is over too, let detectors with a clock-driven part (`tick`:
        unanswered handshakes timing out) act, and let state expire on the clock. The clock
        stops at the first packet of a slice still waiting: its packets came before `now`, and
        an attempt they answer has not timed out, nor has a cooldown they extend ended."""
        clock = float(np.floor(now / self.cfg.general.expire_interval))
        if self.slicer.pending and clock != self.slicer.pending_tick:
            self._analyse_pending()
        self._emit(self.alerts.release(clock))
        if self.slicer.pending:
            now = min(now, float(self.slicer.pending[0].ts.min()))
        if self.stats.last_ts is None or now <= self.stats.last_ts:
            return
        self._emit(self.alerts.ingest(self.tunnels.annotate(self._call_detectors("tick", now)), now))
        self._maybe_expire(now)

    def emit_event(self, record: dict[str, Any]) -> None:
        """A non-alert event (stats) for the sinks that keep events."""
        for sink in self.sinks:
            try:
                sink.write_event(record)
            except Exception as exc:  # noqa: BLE001
                self._failed(f"sink {sink.name}", exc)

    def reconfigure(self, cfg: Config) -> list[str]:
        """Apply new thresholds and blocklists to the running detectors, keeping their state.
        Returns the changed keys that only a restart applies (reload.py); those keep their
        running values (general.expire_interval, windows, caps, enabled, output, store...)."""
        pending = restart_only_changes(self.cfg, cfg)
        cfg = running(self.cfg, cfg)
        self.cfg = cfg
        self.sensor = sensor_name(cfg.general)
        self.alerts.reconfigure(cfg.alerts.cooldown, cfg.alerts.escalation_factor, cfg.alerts.storm_sources)
        self.tunnels.reconfigure(cfg.decode.tunnel_addresses)
        for det in self.detectors:
            section = getattr(cfg.detect, det.name, None)
            if section is None:
                continue
            try:
                det.reconfigure(section, cfg)
            except Exception as exc:  # noqa: BLE001
                self._failed(f"detector {det.name} reload", exc)
        return pending

    def finish(self) -> None:
        """End of input: analyse what waits and emit the run-end alerts (updates of alerts
        whose cooldown the input outlived), so that a final stats record written after this
        counts them. Idempotent; close() calls it."""
        self.flush()
        if not self._finished:
            self._finished = True
            self._emit(self.alerts.finish())

    def close(self) -> None:
        self.finish()
        if self.enricher is not None:
            self.enricher.close()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                self._failed(f"sink {sink.name}", exc)

    def summary(self) -> dict[str, Any]:
        s = self.stats
        wall = time.perf_counter() - self.started
        duration = (s.last_ts - s.first_ts) if s.first_ts is not None and s.last_ts is not None else 0.0
        state: dict[str, int] = {}
        for det in self.detectors:
            state.update(det.stats())
        state.update(self.tunnels.stats())
        if self.packets is not None:
            state.update(self.packets.stats())
        if self.spool is not None:
            state.update(self.spool.stats())
        if self.enricher is not None:
            state.update(self.enricher.stats())
        return {
            "packets": s.packets, "bytes": s.bytes, "capture_duration_s": round(duration, 6),
            "wall_s": round(wall, 3), "packets_per_s": round(s.packets / wall) if wall > 0 else 0,
            "decode_errors": dict(sorted(s.decode_errors.items())), "non_ip_frames": s.non_ip,
            "alerts": dict(sorted(self.alerts.alerts_by_type.items())),
            "suppressed": dict(sorted(self.alerts.suppressed_by_type.items())),
            "suppressed_pending": self.alerts.pending_suppressed()[:20], "muted": s.muted,
            "alert_manager": self.alerts.stats(),
            "top_sources": self.talkers.top(10), "detector_state": state,
            "component_errors": s.component_errors, "compiled_hot_path": native.active(),
            "store": self.store_stats(),
            "blacklists": next((d.lists() for d in self.detectors if isinstance(d, Blacklist)), []),
        }

    def near_misses(self) -> list[dict[str, Any]]:
        """Every detector's near misses at the last packet time (README "Alert record", stats records): at
        most 5 each, in registry order. O(state), so asked only when a stats record is written."""
        now = self.stats.last_ts
        out: list[dict[str, Any]] = []
        if now is None:
            return out
        for det in self.detectors:
            try:
                out.extend(det.near_misses(now))
            except Exception as exc:  # noqa: BLE001 - a broken detector is logged, not fatal
                self._failed(f"detector {det.name} near misses", exc)
        return out

    def store_stats(self) -> dict[str, int]:
        """Delivery counters of the sinks that keep them (stored, spooled, replayed, pending)."""
        out: dict[str, int] = {}
        for sink in self.sinks:
            try:
                counters = sink.stats()
            except Exception as exc:  # noqa: BLE001
                self._failed(f"sink {sink.name} stats", exc)
                continue
            for k, v in counters.items():
                out[k] = out.get(k, 0) + v
        return out

    def halted(self) -> str:
        """The first sink's reason to take no more records (its store's schema moved ahead of
        this wirewatch), '' while every sink takes them: the command stops, exit status 2."""
        return next((why for sink in self.sinks if (why := sink.halted())), "")
