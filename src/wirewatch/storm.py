"""Storm control: many sources, one target, one alert type -> one aggregate alert.

300,000 spoofed sources touching a watched port are one event for an analyst, not
300,000. Findings that name their source in their identifier (suspicious_port,
port_scan, failed_handshake...) are grouped by (type, destination, protocol,
destination port). Once a group has seen more than `threshold` distinct sources within
one cooldown, its further findings are folded: counted, sampled and reported as one
aggregate finding, which the alert manager treats like any other (so it is repeated at
most once per cooldown, and escalates when its source count grows tenfold).
A storm ends when its group has been quiet for a cooldown.

Distinct sources are counted exactly; all storms together remember at most
`max_sources` addresses: beyond that the least recently active group is forgotten
(counted in `evicted`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .detect.base import Finding
from .schema import format_ts

SAMPLE = 10
GroupKey = tuple[str, str, str, int]  # (type, dest_ip, proto, dest_port or -1)


@dataclass
class _Group:
    start: float  # packet time the current counting window (one cooldown) began
    last: float
    sources: set[str] = field(default_factory=set)
    sample: list[str] = field(default_factory=list)
    active: bool = False
    folded: int = 0  # findings folded into the aggregate since the storm began
    figure: int = 0  # sum of the folded findings' main figure (attempts, packets...)
    figure_name: str | None = None
    first: float = 0.0
    dirty: bool = False  # folded something since the last aggregate finding
    reported: int = 0  # folded count the last aggregate *alert* reported
    template: Finding | None = None


def eligible(f: Finding) -> bool:
    """A finding keyed by its source and naming a destination can take part in a storm."""
    return bool(f.src_ip and f.dest_ip and f.src_ip in f.identifier)


# eq=False, repr=False: running state, compared and shown by identity (each method dataclass makes is
# compiled at import: start-up)
@dataclass(eq=False, repr=False)
class StormControl:
    threshold: int  # fold once a group has more than this many distinct sources; 0 = off
    cooldown: float
    max_sources: int = 1_048_576
    max_groups: int = 100_000
    groups: OrderedDict[GroupKey, _Group] = field(default_factory=OrderedDict)
    held: int = 0  # distinct sources held by all groups
    evicted: int = 0
    storms: int = 0  # groups that became storms
    folded: int = 0  # findings folded into aggregates

    def note(self, f: Finding) -> None:
        """Count `f`'s source in its group (first pass over a slice's findings, so that a
        storm that starts inside one slice folds all of that slice's findings)."""
        if self.threshold <= 0 or not eligible(f):
            return
        key = _key(f)
        g = self.groups.get(key)
        if g is not None and (f.ts - g.last >= self.cooldown or (not g.active and f.ts - g.start >= self.cooldown)):
            self._drop(key)  # the storm is over, or the last window ended below the threshold
            g = None
        if g is None:
            g = self.groups[key] = _Group(start=f.ts, last=f.ts, first=f.ts)
        self.groups.move_to_end(key)
        g.last = max(g.last, f.ts)
        if f.src_ip not in g.sources:
            g.sources.add(str(f.src_ip))
            self.held += 1
            if len(g.sample) < SAMPLE:
                g.sample.append(str(f.src_ip))
        if not g.active and len(g.sources) > self.threshold:
            g.active = True
            self.storms += 1
        self._bound()

    def fold(self, f: Finding, figure: str | None) -> bool:
        """True when `f` (already noted) belongs to a storm: it is counted, not alerted."""
        if self.threshold <= 0 or not eligible(f):
            return False
        g = self.groups.get(_key(f))
        if g is None or not g.active:
            return False
        g.folded += 1
        g.figure += _number(f.evidence.get(figure)) if figure else 1
        g.figure_name = figure
        g.dirty = True
        g.template = f
        self.folded += 1
        return True

    def aggregates(self, label: Mapping[str, str], final: bool = False) -> list[tuple[_Group, Finding]]:
        """One aggregate finding per storm that folded something since the last call (with
        `final`: since its last alert), and its group (mark it with `reported`)."""
        out = []
        for (typ, dest, proto, port), g in self.groups.items():
            grew = g.folded > g.reported if final else g.dirty
            if not (g.active and grew and g.template is not None):
                continue
            g.dirty = False
            n = len(g.sources)
            where = dest if port < 0 else f"{dest}:{port}"
            noun = label.get(typ, f"{typ.replace('_', ' ')} alerts").format(proto=proto or "IP")
            evidence: dict[str, Any] = {
                "storm": True, "distinct_sources": n, "folded_alerts": g.folded,
                "storm_threshold": self.threshold, "window_s": self.cooldown,
                "sample_sources": g.sample, "first_seen": format_ts(g.first), "last_seen": format_ts(g.last),
            }
            if g.figure_name:  # e.g. attempts: the sum over the folded alerts
                evidence[g.figure_name] = g.figure
            if final:
                evidence["final"] = True
            out.append((g, Finding(
                type=typ, identifier=("storm", dest, proto, port), ts=g.last,
                message=f"{noun} to {where} from {n:,} sources", dest_ip=dest,
                dest_port=None if port < 0 else port, proto=g.template.proto, evidence=evidence,
            )))
        return out

    @staticmethod
    def reported(g: _Group) -> None:
        g.reported = g.folded

    def _drop(self, key: GroupKey) -> None:
        g = self.groups.pop(key)
        self.held -= len(g.sources)

    def _bound(self) -> None:
        while len(self.groups) > 1 and (self.held > self.max_sources or len(self.groups) > self.max_groups):
            self._drop(next(iter(self.groups)))
            self.evicted += 1

    def stats(self) -> dict[str, int]:
        return {"storms": self.storms, "storm_folded_alerts": self.folded,
                "storm_groups": len(self.groups), "storm_sources_held": self.held, "storm_evicted": self.evicted}


def _key(f: Finding) -> GroupKey:
    return (f.type, str(f.dest_ip), f.proto or "", -1 if f.dest_port is None else int(f.dest_port))


def _number(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 1
