"""The Detector protocol, the Finding a detector reports, and the DetectorSpec each detector
module declares (its name, settings, signature and builder) for detect/registry.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..decode import PacketBatch
from ..settings import Frozen

if TYPE_CHECKING:
    from ..config import Config
    from .registry import Shared


@dataclass
class Finding:
    """What crossed a threshold, with the evidence an analyst needs to trust it.

    `identifier` defines "the same alert" for deduplication (e.g. the scanner's address);
    `ts` is the packet time of the last packet that contributed.
    """

    type: str
    identifier: tuple[Any, ...]
    ts: float
    message: str
    src_ip: str | None = None
    dest_ip: str | None = None
    src_port: int | None = None
    dest_port: int | None = None
    proto: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    target: str = "dest"  # the victim's side, like Suricata's `target:` keyword: "dest" or "src"
    severity: int | None = None  # None = the detector's signature severity


def one_per_source(found: list[Finding], figure: str, listing: str,
                   entry: Callable[[Finding], dict[str, Any]]) -> list[Finding]:
    """One finding per source and slice, for a detector whose identifier is the source (its
    other findings would only be suppressed repeats of it): the one with the largest `figure`
    speaks, and where there were several its evidence[`listing`] gives `entry` of each."""
    by: dict[str, list[Finding]] = {}
    for f in found:
        by.setdefault(f.src_ip or "", []).append(f)
    out = []
    for fs in by.values():
        fs.sort(key=lambda f: -int(f.evidence[figure]))
        if len(fs) > 1:
            fs[0].evidence[listing] = [entry(f) for f in fs]
        out.append(fs[0])
    return out


class Detector(Protocol):
    """What the engine calls on every detector (Reconfigurable gives tick and reconfigure
    their defaults)."""

    name: str

    def observe(self, batch: PacketBatch) -> list[Finding]:
        """Update state from this batch's columns; return findings that crossed a threshold."""

    def tick(self, now: float) -> list[Finding]:
        """A live sensor's quiet wire: what the clock alone decides (failed_handshake:
        attempts nobody answered in time)."""

    def finish(self, now: float) -> list[Finding]:
        """The input ended (`now`: its last packet time): findings a detector held back to
        decide later (host_sweep: a crossing waiting to see whether it is a monitor)."""

    def expire(self, now: float) -> None:
        """Forget state older than the window (packet time)."""

    def reconfigure(self, cfg: Any, root: Any = None) -> None:
        """SIGHUP: this detector's new settings section (and the whole new Config)."""

    def stats(self) -> dict[str, int]:
        """Entries held, entries evicted: exported in the summary and as metrics."""

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """Its current top keys below their threshold (at least half of it): at most 5,
        highest fraction first, built with count.report.near_miss. Asked only when a stats
        record is written (README "Alert record", stats records), never per packet."""


class Reconfigurable:
    """The defaults of a detector's optional parts. SIGHUP support: new thresholds take
    effect on live state; windows and caps (which size the state) keep their start-up
    values until a restart. No clock-driven part unless a detector overrides tick."""

    cfg: Any

    def reconfigure(self, cfg: Any, root: Any = None) -> None:
        """`cfg` is the detector's section; `root`, the whole new Config, for a detector
        whose settings default to another section's (distributed_scan: port_scan.threshold)."""
        self.cfg = cfg
        if root is not None:
            self.root = root
        self.configure()

    def configure(self) -> None:
        """Recompute anything derived from self.cfg (called at start and on reload)."""

    def tick(self, now: float) -> list[Finding]:
        return []

    def finish(self, now: float) -> list[Finding]:
        return []

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """None, unless the detector has a figure that grows towards a threshold."""
        return []


@dataclass(frozen=True, eq=False, repr=False)
class Signature(Frozen):
    """The alert's EVE `alert` block: signature_id, signature, category, severity (1=high..3=low)."""

    signature_id: int
    signature: str
    category: str
    severity: int


@dataclass(frozen=True, eq=False, repr=False)
class Rise(Frozen):
    """The alert's severity rises to `severity` (1 = high .. 3 = low) when the evidence value
    at `key` (a dot reaches into a dict: "answers.open"; true counts as 1) is at least `at_least`.
    A repeat inside the cooldown whose severity rose is an escalation (alerts.py)."""

    key: str
    at_least: float
    severity: int
    why: str = ""  # for README's signature table

    def applies(self, evidence: Mapping[str, Any]) -> bool:
        v: Any = evidence
        for part in self.key.split("."):
            v = v.get(part) if isinstance(v, Mapping) else None
        return isinstance(v, (int, float)) and v >= self.at_least


@dataclass(frozen=True, eq=False, repr=False)
class Tunable(Frozen):
    """A threshold `wirewatch tune` can sweep (see tune.py).

    `key` is the setting in the detector's section, `figure` the evidence key of the number
    the threshold is compared with (a finding belongs to the first of its detector's
    tunables whose figure is in its evidence), `grid` the default (lowest, highest, step),
    a sensible range around the default, and `note` where the one-pass estimate is
    approximate for this detector. `slow` names a second window's threshold that follows this
    one (0 = `slow_factor` x it, rounded): tune records the two windows apart.
    """

    key: str
    figure: str
    grid: tuple[float, float, float]
    note: str = ""
    slow: str = ""
    slow_factor: float = 1.0


@dataclass(frozen=True, eq=False, repr=False)
class DetectorSpec(Frozen):
    """Everything the rest of wirewatch needs to know about one detector.

    `config` is its settings dataclass: the [detect.<name>] section (it must have `enabled`).
    `build(cfg, shared)` makes the detector from the whole Config (a detector may read another
    section, e.g. distributed_scan reads port_scan's threshold) and the state detectors share
    (`shared.handshakes()`). `tunables` are the thresholds `wirewatch tune` sweeps.
    `figure` is the evidence key of its main figure (distinct sources, packets, ports): a repeat
    inside the cooldown that grew tenfold in it is an escalation (alerts.py). `storm_label` is
    what many of its alerts are called in a storm aggregate ("Suspicious {proto} connections").
    `rises` raise an alert's severity above the signature's as its evidence grows (Rise).
    `conversation`: the evidence is about a conversation, so the victim's answers belong to
    the alert's packets (packet_ring.py: an alert's pcap holds both directions, else only the
    attacker's packets).
    """

    name: str
    config: type
    signature: Signature
    build: Callable[[Config, Shared], Detector]
    tunables: tuple[Tunable, ...] = ()
    figure: str | None = None
    storm_label: str | None = None
    rises: tuple[Rise, ...] = ()
    conversation: bool = False
