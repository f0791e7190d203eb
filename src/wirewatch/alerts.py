"""Finding -> Alert: deduplication by identifier with a cooldown in packet time,
escalation of repeats that grew, storm control and correlation of probes with scans."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .correlate import Correlator
from .detect.base import Finding
from .schema import alert_record, flow_id, severity_of
from .storm import StormControl

STORM_FIGURE = "distinct_sources"  # an aggregate's main figure, whatever its type
# suppressed repeats whose figure reached this multiple of the last told make an update while the
# cooldown runs (once); when it ends, or the run does, any growth since last told is told
UPDATE_GROWTH = 1.5


@dataclass
class _Seen:
    last_alert: float  # packet time of the alert that started the cooldown
    figure: float | None  # its main figure (see AlertManager.figures)
    severity: int
    ref: dict[str, Any]  # how a later escalation or update names it (escalated_from, update_of)
    suppressed: int = 0
    grown: Finding | None = None  # the suppressed repeat with the largest figure, for the update
    told: float | None = None  # the figure last told (the alert's, then its early update's)
    early: bool = False  # an update was given while this cooldown runs (at most one)


# eq=False, repr=False: running state, compared and shown by identity (each method dataclass makes is
# compiled at import: start-up)
@dataclass(eq=False, repr=False)
class AlertManager:
    """Decides whether a finding is a new alert or a suppressed duplicate.

    "The same alert" is (detector type, finding.identifier). A repeat within `cooldown`
    seconds of the alert that started the cooldown is suppressed and counted (the next
    alert for it carries `evidence.suppressed_since_last`), unless it escalates: its main
    figure (`figures[type]`, an evidence key each detector declares: distinct sources,
    packets, ports) reached `escalation_factor` times that alert's, or its severity rose.
    An escalation is a new alert with `escalated_from` naming the earlier one, and starts
    a new cooldown. A repeat suppressed with a larger figure is not lost: it becomes an update
    of the alert (`update_of` naming it) as soon as its figure reached UPDATE_GROWTH times the
    alert's (the slice it came in), at most once while the cooldown runs; and when the cooldown
    ends without a new alert (or the run ends), the largest repeat since becomes a last update
    if it reached UPDATE_GROWTH times the figure last told. So at most two updates per alert:
    the first news of growth, and the tally (a storm aggregate only the tally: it is itself
    repeated once per cooldown). A scanner's watched-port probes that came after its
    scan alert was written make an update too (correlate.py).
    Identifiers are capped (least recent go).
    """

    cooldown: float
    max_identifiers: int = 100_000
    iface: str | None = None
    figures: Mapping[str, str] = field(default_factory=dict)
    storm_labels: Mapping[str, str] = field(default_factory=dict)
    escalation_factor: float = 10.0
    storm_sources: int = 0
    max_storm_sources: int = 1_048_576
    seen: OrderedDict[tuple[Any, ...], _Seen] = field(default_factory=OrderedDict)
    alerts_by_type: dict[str, int] = field(default_factory=dict)
    suppressed_by_type: dict[str, int] = field(default_factory=dict)
    escalated_by_type: dict[str, int] = field(default_factory=dict)
    updated_by_type: dict[str, int] = field(default_factory=dict)
    growing: OrderedDict[tuple[Any, ...], None] = field(default_factory=OrderedDict)  # keys with a `grown`
    evicted: int = 0
    held: list[Finding] = field(default_factory=list)
    held_tick: float = -math.inf  # the time slice the held probes came in (see ingest's `tick`)
    tallies: list[dict[str, Any]] = field(default_factory=list)  # updates _decide made before its alert

    def __post_init__(self) -> None:
        self.storm = StormControl(self.storm_sources, self.cooldown, self.max_storm_sources, self.max_identifiers)
        self.correlator = Correlator(self.cooldown, self.max_identifiers)

    def reconfigure(self, cooldown: float, escalation_factor: float, storm_sources: int) -> None:
        self.cooldown = self.storm.cooldown = self.correlator.cooldown = cooldown
        self.escalation_factor = escalation_factor
        self.storm.threshold = storm_sources

    def ingest(self, findings: list[Finding], now: float | None = None, tick: float | None = None) -> list[dict[str, Any]]:
        """This slice's findings -> its alerts. Probes (watched-port findings) that no scan
        alert explains yet wait one slice: the scan may cross its threshold in the next.
        `now` (packet time; default the latest finding's) ends cooldowns: their updates follow.
        `tick` numbers the slice (packet time // expire_interval): held probes wait for the
        adjacent slice only, so a slice that comes later decides them before its own findings,
        as a quiet wire's clock does (`release`), whichever slice happens to be analysed next.
        Without `tick` (a live sensor's clock tick: findings of no slice) they wait on."""
        out: list[dict[str, Any]] = []
        self.correlator.begin()
        held, self.held = (self.held, []) if tick is not None else ([], self.held)
        if held and tick is not None and tick > self.held_tick + 1:
            for f in held:
                self._one(f, out, may_hold=False)
            held = []
        # scans and sweeps first, so a probe of the same slice can join its scan's alert
        ordered = sorted(findings, key=lambda f: (self.correlator.is_probe(f), f.ts, f.type, repr(f.identifier)))
        for f in ordered:
            self.storm.note(f)
        for f in ordered:
            self._one(f, out, may_hold=True)
        for f in held:
            self._one(f, out, may_hold=False)
        if tick is not None:
            self.held_tick = tick
        for group, agg in self.storm.aggregates(self.storm_labels):
            record = self._decide(agg)
            out += self._take_tallies()
            if record is not None:
                self.storm.reported(group)
                out.append(record)
        if now is None and findings:
            now = max(f.ts for f in findings)
        if now is not None:
            out += self._updates(now)
        return out

    def _one(self, f: Finding, out: list[dict[str, Any]], may_hold: bool) -> None:
        if self.correlator.absorb(f) or self.storm.fold(f, self.figures.get(f.type)):
            return
        if may_hold and self.correlator.is_probe(f):
            self.held.append(f)
            return
        record = self._decide(f)
        out += self._take_tallies()
        if record is not None:
            self.correlator.noted(f, record)
            out.append(record)

    def release(self, tick: float | None = None) -> list[dict[str, Any]]:
        """The probes held back from the last slice, decided now: at the end of input (`tick`
        None) or, on an idle wire, once the clock's slice `tick` is past the one after theirs
        (or behind theirs: a clock that disagrees with the packets' cannot tell)."""
        if tick is not None and self.held_tick <= tick <= self.held_tick + 1:
            return []
        held, self.held = self.held, []
        out: list[dict[str, Any]] = []
        for f in held:
            self._one(f, out, may_hold=False)
        return out

    def finish(self) -> list[dict[str, Any]]:
        """At the end of a run: a last aggregate for storms that grew since their last alert
        (its `final` evidence says so), whatever the cooldown."""
        out = []
        for group, agg in self.storm.aggregates(self.storm_labels, final=True):
            record = self._decide(agg, force=True)
            out += self._take_tallies()
            if record is not None:
                self.storm.reported(group)
                out.append(record)
        return out + self._updates(None)

    def _updates(self, now: float | None) -> list[dict[str, Any]]:
        """Updates: of an alert whose repeat grew UPDATE_GROWTH-fold while its cooldown runs,
        at once (once); of alerts whose cooldown ended by `now` (None: the run ends, all of
        them), the largest suppressed repeat that grew since last told; then scanners' late
        watched-port probes."""
        out: list[dict[str, Any]] = []
        for key in list(self.growing):
            prior = self.seen.get(key)
            f = prior.grown if prior is not None else None
            if prior is None or f is None:
                del self.growing[key]
                continue
            if now is not None and now - prior.last_alert < self.cooldown:  # the cooldown runs
                if prior.early or not self._grew_enough(prior, f) or f.evidence.get("storm"):
                    continue  # wait: at most one update while it runs, the tally when it ends
                    # (a storm's aggregate is told again each cooldown: its growth waits for that)
                prior.early = True
            record = self._update(key, prior)
            if record is not None:
                out.append(record)
        for record in self.correlator.updates(now):
            self._count_update(record["type"])
            out.append(record)
        return out

    def _take_tallies(self) -> list[dict[str, Any]]:
        out, self.tallies = self.tallies, []
        return out

    def _grew_enough(self, prior: _Seen, f: Finding) -> bool:
        figure = self._figure(f)
        return figure is not None and prior.told is not None and figure >= UPDATE_GROWTH * prior.told

    def _update(self, key: tuple[Any, ...], prior: _Seen) -> dict[str, Any] | None:
        """The update of `prior`'s alert from its largest suppressed repeat (kept only when it grew
        past the figure last told: _grew; while the cooldown runs, _updates asks UPDATE_GROWTH)."""
        f = prior.grown
        self.growing.pop(key, None)
        prior.grown = None
        if f is None:
            return None
        figure = self._figure(f)
        prior.told = figure
        record = alert_record(f, self.iface, prior.suppressed, None)
        name = STORM_FIGURE if f.evidence.get("storm") else self.figures.get(f.type)
        record["update_of"] = prior.ref
        record["message"] = f"{f.message} [update: {_change(name, prior, figure, prior.severity)}]"
        self.correlator.noted(f, record, update=True)  # a scan's update takes its late probes
        prior.suppressed = 0
        self._count_update(f.type)
        return record

    def _count_update(self, kind: str) -> None:
        self.updated_by_type[kind] = self.updated_by_type.get(kind, 0) + 1
        self.alerts_by_type[kind] = self.alerts_by_type.get(kind, 0) + 1

    def _figure(self, f: Finding) -> float | None:
        name = STORM_FIGURE if f.evidence.get("storm") else self.figures.get(f.type)
        v = f.evidence.get(name) if name else None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def _decide(self, f: Finding, force: bool = False) -> dict[str, Any] | None:
        key = (f.type,) + tuple(f.identifier)
        prior = self.seen.get(key)
        figure, severity = self._figure(f), severity_of(f)
        escalated_from = None
        if prior is not None and f.ts - prior.last_alert < self.cooldown and not force:
            if not self._escalates(prior, figure, severity):
                prior.suppressed += 1
                self.suppressed_by_type[f.type] = self.suppressed_by_type.get(f.type, 0) + 1
                self._grew(key, prior, f, figure)
                return None
            escalated_from = prior.ref
            self.escalated_by_type[f.type] = self.escalated_by_type.get(f.type, 0) + 1
        if prior is not None and prior.grown is not None and escalated_from is None and not force \
                and not f.evidence.get("storm"):  # (a storm's next aggregate is its tally)
            # its cooldown ended in this slice: the tally of the old alert first, not lost
            tally = self._update(key, prior)
            if tally is not None:
                self.tallies.append(tally)
        suppressed = prior.suppressed if prior else 0
        record = alert_record(f, self.iface, suppressed, escalated_from)
        name = STORM_FIGURE if f.evidence.get("storm") else self.figures.get(f.type)
        if escalated_from is not None and prior is not None:
            record["message"] = f"{f.message} [escalated: {_change(name, prior, figure, severity)}]"
        ref = {"flow_id": flow_id(key), "timestamp": record["timestamp"], "message": f.message}
        if name and figure is not None:
            ref[name] = f.evidence[name]
        self.seen[key] = _Seen(f.ts, figure, severity, ref, told=figure)
        self.seen.move_to_end(key)
        if len(self.seen) > self.max_identifiers:
            self.seen.popitem(last=False)
            self.evicted += 1
        self.alerts_by_type[f.type] = self.alerts_by_type.get(f.type, 0) + 1
        return record

    def _grew(self, key: tuple[Any, ...], prior: _Seen, f: Finding, figure: float | None) -> None:
        """Keep the suppressed repeat with the largest figure above the one last told (its update)."""
        if figure is None or prior.told is None or figure <= prior.told:
            return
        best = self._figure(prior.grown) if prior.grown is not None else None
        if best is None or figure >= best:
            prior.grown = f
            self.growing[key] = None

    def _escalates(self, prior: _Seen, figure: float | None, severity: int) -> bool:
        if severity < prior.severity:  # 1 = high: a lower number is a rise
            return True
        if self.escalation_factor <= 0 or figure is None or prior.figure is None or prior.figure <= 0:
            return False
        return figure >= self.escalation_factor * prior.figure

    def pending_suppressed(self) -> list[dict[str, Any]]:
        """At the end of a run: identifiers with duplicates not yet reported."""
        return [{"type": k[0], "identifier": [str(x) for x in k[1:]], "suppressed": s.suppressed}
                for k, s in self.seen.items() if s.suppressed]

    def stats(self) -> dict[str, Any]:
        return {"escalated": dict(sorted(self.escalated_by_type.items())),
                "updated": dict(sorted(self.updated_by_type.items())), **self.storm.stats(),
                **self.correlator.stats(), "alert_identifiers_evicted": self.evicted}


def _change(name: str | None, prior: _Seen, figure: float | None, severity: int) -> str:
    """What grew, for the escalated alert's message: "distinct_sources 1 -> 195,000"."""
    parts = []
    if name and figure is not None and prior.figure is not None and figure != prior.figure:
        parts.append(f"{name} {prior.figure:,.0f} -> {figure:,.0f}")
    if severity < prior.severity:
        parts.append(f"severity {prior.severity} -> {severity}")
    return ", ".join(parts) + f" since {prior.ref['timestamp']}"
