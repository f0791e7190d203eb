"""Correlation: a watched-port probe by a source already alerted for a scan or sweep (or by one
of that scan's decoys, port_scan's `decoys`) is one of that scan's probes, not an alert of its own.
So is a single packet to a watched port of a host alerted for a flood from many (often forged)
sources (syn_flood, traffic_burst's many-sources view, which name the victim, no source): a
forged source sends one SYN or datagram, and `hping3 -S --rand-source -p ++1` reaches every
watched port of its victim from another random address; that packet is the flood's, it goes into
the flood alert's evidence the same way.

The probe goes into the scan alert's evidence (`watched_ports_touched`): into the alert
itself when both come from the same time slice (the alert manager handles scans before
probes), else into that scanner's next scan alert, or, when none comes within the cooldown
(or the run ends first), into an update of its last one: the same alert again with the
probes added and `update_of` naming it. A completed connection to a watched
port (suspicious_port evidence `completed`), like a session seen mid-stream, is no probe and
always alerts.
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .detect.base import Finding
from .schema import format_ts

SCANS = ("port_scan", "host_sweep")  # findings that explain one source's probes
FLOODS = ("syn_flood", "traffic_burst")  # without a source (many sources): explain one-packet probes of the victim
PROBES = ("suspicious_port",)  # findings that are one probe of a source


@dataclass
class _Scanner:
    ts: float  # packet time of its last scan alert
    record: dict[str, Any] | None  # that alert, while it has not been handed to the sinks
    ports: set[int] = field(default_factory=set)  # probes not yet in any alert's evidence
    probes: int = 0
    sent: dict[str, Any] | None = None  # its last scan alert, handed to the sinks (for an update)
    late: float = 0.0  # packet time of the last probe not yet in any alert


# eq=False, repr=False: running state, compared and shown by identity (each method dataclass makes is
# compiled at import: start-up)
@dataclass(eq=False, repr=False)
class Correlator:
    cooldown: float
    max_scanners: int = 100_000
    scanners: OrderedDict[str, _Scanner] = field(default_factory=OrderedDict)
    decoys: OrderedDict[str, str] = field(default_factory=OrderedDict)  # a scan's forged source -> the scanner
    absorbed: int = 0
    evicted: int = 0

    @staticmethod
    def is_probe(f: Finding) -> bool:
        # attempts (SYNs, datagrams) are probes; a completed or mid-stream session is not
        return f.type in PROBES and "attempts" in f.evidence

    def begin(self) -> None:
        """A new slice: alerts of earlier slices are gone to the sinks, never edit them."""
        for s in self.scanners.values():
            if s.record is not None:
                s.sent, s.record = s.record, None

    def absorb(self, f: Finding) -> bool:
        """True when `f` is a probe of a source alerted for a scan within the cooldown."""
        if not self.is_probe(f) or f.src_ip is None:
            return False
        s = self.scanners.get(self.decoys.get(f.src_ip, f.src_ip))
        if (s is None or f.ts - s.ts >= self.cooldown) and f.evidence.get("attempts") == 1:
            s = self.scanners.get(_flood_key(f.dest_ip, f.proto))  # one packet: a forged source's
        if s is None or f.ts - s.ts >= self.cooldown:
            return False
        self.absorbed += 1
        port = int(f.dest_port) if f.dest_port is not None else -1
        if s.record is not None:
            _add(s.record["evidence"], {port}, 1)
        else:
            s.ports.add(port)
            s.probes += 1
            s.late = max(s.late, f.ts)
        return True

    def noted(self, f: Finding, record: dict[str, Any], update: bool = False) -> None:
        """`record` became an alert; a scan alert collects its source's pending probes. An
        update of a scan alert takes them too, but starts no cooldown of its own."""
        key = _key(f)
        if key is None:
            return
        if update:
            s0 = self.scanners.get(key)
            if s0 is not None:
                if s0.ports:
                    _add(record["evidence"], s0.ports, s0.probes)
                    s0.ports, s0.probes = set(), 0
                # what the scan's alert says now: later probes update this, not the first alert's figures
                s0.sent, s0.record = record, None
            return
        s = self.scanners.pop(key, None) or _Scanner(f.ts, None)
        s.ts, s.record, s.sent = f.ts, record, None
        if s.ports:
            _add(record["evidence"], s.ports, s.probes)
            s.ports, s.probes = set(), 0
        self.scanners[key] = s
        for decoy in f.evidence.get("decoys", ()):  # nmap -D: the forged sources' probes are the scan's
            self.decoys.pop(decoy, None)
            self.decoys[decoy] = key
        for table in (self.scanners, self.decoys):
            while len(table) > self.max_scanners:
                table.popitem(last=False)
                self.evicted += 1

    def updates(self, now: float | None) -> list[dict[str, Any]]:
        """Updates of scan alerts whose probes came after they were written, once the
        cooldown ended without a new scan alert by `now` (None: the run ends, every one)."""
        out = []
        for src, s in list(self.scanners.items()):  # oldest scan alert first (noted() moves to the end)
            if now is not None and now - s.ts < self.cooldown:
                break
            if s.ports and s.sent is not None:
                out.append(_update(s))
            del self.scanners[src]  # its cooldown is over: later probes alert on their own
        self.decoys = OrderedDict((d, src) for d, src in self.decoys.items() if src in self.scanners)
        return out

    def stats(self) -> dict[str, int]:
        return {"correlated_probes": self.absorbed, "correlation_scanners_evicted": self.evicted}


def _key(f: Finding) -> str | None:
    """Whose probes an alert explains: a scanner's (its source), or a many-sources flood's (its
    victim and protocol); None for any other alert."""
    if f.type in SCANS and f.src_ip is not None:
        return f.src_ip
    if f.type in FLOODS and f.src_ip is None and f.dest_ip is not None:
        return _flood_key(f.dest_ip, f.proto)
    return None


def _flood_key(victim: str | None, proto: str | None) -> str:
    return f"flood of {victim} ({proto})"  # never an address: no source's key


def _add(evidence: dict[str, Any], ports: set[int], probes: int) -> None:
    evidence["watched_ports_touched"] = sorted(set(evidence.get("watched_ports_touched", [])) | ports)
    evidence["watched_port_probes"] = evidence.get("watched_port_probes", 0) + probes


def _update(s: _Scanner) -> dict[str, Any]:
    """The scan alert `s.sent` (or its last update) again, with the probes that came after it."""
    sent = s.sent
    assert sent is not None
    record = copy.deepcopy(sent)
    record.pop("escalated_from", None)
    record["update_of"] = sent.get("update_of") or {"flow_id": sent["flow_id"], "timestamp": sent["timestamp"],
                                                     "message": sent["message"]}
    record["timestamp"] = format_ts(s.late)
    ports = ", ".join(str(p) for p in sorted(s.ports))
    base = re.sub(r" \[(escalated|update): .*\]$", "", sent["message"])
    record["message"] = f"{base} [update: watched ports {ports} probed since {sent['timestamp']}]"
    _add(record["evidence"], s.ports, s.probes)
    s.ports, s.probes = set(), 0
    return record
