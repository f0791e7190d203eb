"""Correlation: a watched-port probe by a source already alerted for a scan or sweep is
one of that scan's probes, not an alert of its own.

The probe goes into the scan alert's evidence (`watched_ports_touched`): into the alert
itself when both come from the same time slice (the alert manager handles scans before
probes), else into that scanner's next scan alert. A completed connection to a watched
port (suspicious_port evidence `completed`), like a session seen mid-stream, is no probe and
always alerts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .detect.base import Finding

SCANS = ("port_scan", "host_sweep")  # findings that explain one source's probes
PROBES = ("suspicious_port",)  # findings that are one probe of a source


@dataclass
class _Scanner:
    ts: float  # packet time of its last scan alert
    record: dict[str, Any] | None  # that alert, while it has not been handed to the sinks
    ports: set[int] = field(default_factory=set)  # probes not yet in any alert's evidence
    probes: int = 0


@dataclass
class Correlator:
    cooldown: float
    max_scanners: int = 100_000
    scanners: OrderedDict[str, _Scanner] = field(default_factory=OrderedDict)
    absorbed: int = 0
    evicted: int = 0

    @staticmethod
    def is_probe(f: Finding) -> bool:
        # attempts (SYNs, datagrams) are probes; a completed or mid-stream session is not
        return f.type in PROBES and "attempts" in f.evidence

    def begin(self) -> None:
        """A new slice: alerts of earlier slices are gone to the sinks, never edit them."""
        for s in self.scanners.values():
            s.record = None

    def absorb(self, f: Finding) -> bool:
        """True when `f` is a probe of a source alerted for a scan within the cooldown."""
        if not self.is_probe(f) or f.src_ip is None:
            return False
        s = self.scanners.get(f.src_ip)
        if s is None or f.ts - s.ts >= self.cooldown:
            return False
        self.absorbed += 1
        port = int(f.dest_port) if f.dest_port is not None else -1
        if s.record is not None:
            _add(s.record["evidence"], {port}, 1)
        else:
            s.ports.add(port)
            s.probes += 1
        return True

    def noted(self, f: Finding, record: dict[str, Any]) -> None:
        """`record` became an alert; a scan alert collects its source's pending probes."""
        if f.type not in SCANS or f.src_ip is None:
            return
        s = self.scanners.pop(f.src_ip, None) or _Scanner(f.ts, None)
        s.ts, s.record = f.ts, record
        if s.ports:
            _add(record["evidence"], s.ports, s.probes)
            s.ports, s.probes = set(), 0
        self.scanners[f.src_ip] = s
        if len(self.scanners) > self.max_scanners:
            self.scanners.popitem(last=False)
            self.evicted += 1

    def stats(self) -> dict[str, int]:
        return {"correlated_probes": self.absorbed, "correlation_scanners_evicted": self.evicted}


def _add(evidence: dict[str, Any], ports: set[int], probes: int) -> None:
    evidence["watched_ports_touched"] = sorted(set(evidence.get("watched_ports_touched", [])) | ports)
    evidence["watched_port_probes"] = evidence.get("watched_port_probes", 0) + probes
