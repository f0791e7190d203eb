"""`wirewatch tune`: how many alerts each threshold would raise, from ONE pass over captures.

The mechanism. Each detector runs once, as `read` runs it (same readers, engine, slices,
state caps), except that every tunable threshold (detect.base.Tunable, declared in the
detector's SPEC) is lowered to the lowest value of its grid, and the once-per-window report
gate is opened (the detectors are built with count.report.EVERY_EVALUATION as their Gate,
through Shared), so a key is reported at *every* evaluation where it is above the lowered
threshold, not only the first. Per alert key (detector type and finding
identifier: what the alert manager deduplicates on) we keep the peak of the figure the
threshold is compared with (Tunable.figure in the evidence). The detector with threshold T
raises that key iff at some evaluation its figure reached T, i.e. iff its peak >= T: the
figure is the same at the same evaluation points whatever T is, so this is exact for a
detector whose threshold only gates reporting.

Where it is approximate (stated in each Tunable.note and in the output): a threshold that
also decides state (traffic_burst's many-sources view admits destinations by the
threshold's rate), a second threshold derived from the first (port_scan's slow window is
1.25 x threshold: its findings are scaled to threshold units), a finding chosen among keys
by the threshold (syn_flood: one per victim), and checks that the opened gate makes more
frequent (distributed_scan's membership). Cooldowns do not matter: distinct alert keys are
counted, not repeats.

Memory: the traffic chooses how many alert keys there are (a forged-source storm makes one per
source), so each table of peaks (one per swept threshold, one per detector without a
threshold) holds at most `alerts.max_identifiers` keys, the cap `read`'s alert manager puts on
the identifiers it remembers. When a table is full the keys with the lowest peaks go first
(PeakTable): a key whose peak is p fires at no threshold above p, so above the highest peak
ever evicted (`floor`) every count stays exact, and at or below it a count is a lower bound,
which the output says. Evictions are counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .capture.pcapfile import read_batches
from .config import Config, ConfigError
from .decode import PacketBatch
from .detect.base import Detector, DetectorSpec, Finding, Tunable
from .detect.count.report import EVERY_EVALUATION
from .detect.registry import DETECTORS, Shared
from .engine import Engine
from .progress import Progress
from .settings import Frozen

MAX_POINTS = 1000  # grid values per threshold: a typo such as 1:1e9:1 is refused, not computed
EPSILON = 1e-9


@dataclass(frozen=True, eq=False, repr=False)
class Grid(Frozen):
    """The threshold values swept for one (detector, setting)."""

    detector: str
    tunable: Tunable
    values: tuple[float, ...]
    current: float  # the setting in effect (config file, --set), marked in the output

    @property
    def label(self) -> str:
        return f"{self.detector}.{self.tunable.key}"

    @property
    def lowest(self) -> float:
        return min(self.values[0], self.current)


EVICT_FRACTION = 16  # a full table frees this fraction of its cap at once (one sort per that many new keys)


class KeyPeak:
    """One alert key's peak figure and the sources of its findings (held as None, one address
    or a set: most keys have one source, and a set costs 200 bytes a key)."""

    __slots__ = ("peak", "_src")

    def __init__(self, peak: float, sources: Iterable[str] = ()):
        self.peak = peak
        self._src: str | set[str] | None = None
        for s in sources:
            self.add(s)

    def add(self, source: str) -> None:
        if self._src is None:
            self._src = source
        elif isinstance(self._src, str):
            if source != self._src:
                self._src = {self._src, source}
        else:
            self._src.add(source)

    @property
    def sources(self) -> set[str]:
        return set() if self._src is None else {self._src} if isinstance(self._src, str) else set(self._src)


class PeakTable:
    """Alert key -> KeyPeak, at most `cap` keys; when full, the lowest peaks are evicted
    (ties: the key recorded first), `evict_batch` of them at once, and counted. `floor` is the
    highest peak evicted so far (None: none): a count at a threshold above it is exact, at or
    below it a lower bound (an evicted key may have fired there)."""

    __slots__ = ("keys", "cap", "evict_batch", "evicted", "floor")

    def __init__(self, cap: int):
        self.keys: dict[tuple[Any, ...], KeyPeak] = {}
        self.cap = cap
        self.evict_batch = max(1, cap // EVICT_FRACTION)
        self.evicted = 0
        self.floor: float | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def keep(self, key: tuple[Any, ...], figure: float, source: str | None) -> None:
        kp = self.keys.get(key)
        if kp is None:
            kp = self.keys[key] = KeyPeak(figure)
            if len(self.keys) > self.cap:
                self._evict(len(self.keys) - self.cap + self.evict_batch - 1)
                if key not in self.keys:  # the new key itself was among the lowest
                    return
        elif figure > kp.peak:
            kp.peak = figure
        if source:
            kp.add(source)

    def _evict(self, count: int) -> None:
        """Drop the `count` (>= 1) keys with the lowest peaks."""
        peaks = np.fromiter((kp.peak for kp in self.keys.values()), dtype=np.float64, count=len(self.keys))
        lowest = np.argsort(peaks, kind="stable")[:count]  # stable: among equal peaks, the oldest key
        names = list(self.keys)
        for i in lowest.tolist():
            del self.keys[names[i]]
        top = float(peaks[lowest[-1]])  # sorted: the highest peak dropped
        self.floor = top if self.floor is None else max(self.floor, top)
        self.evicted += len(lowest)

    def exact_at(self, threshold: float) -> bool:
        """Whether the count at `threshold` is exact (no evicted key can fire there)."""
        return self.floor is None or threshold > self.floor + EPSILON

    def at(self, threshold: float) -> dict[tuple[Any, ...], KeyPeak]:
        """The alert keys kept that fire at `threshold`."""
        return {k: v for k, v in self.keys.items() if v.peak + EPSILON >= threshold}


@dataclass
class Peaks:
    """What one pass recorded: per threshold label, per alert key, the peak figure; and the
    alert keys of detectors without a tunable threshold (they fire whatever the grid). Each
    table holds at most `cap` keys (alerts.max_identifiers)."""

    cap: int = 100_000
    by_grid: dict[str, PeakTable] = field(default_factory=dict)
    untuned: dict[str, PeakTable] = field(default_factory=dict)
    packets: int = 0

    def table(self, label: str) -> PeakTable:
        """The table of one threshold label (empty when the pass recorded nothing for it)."""
        table = self.by_grid.get(label)
        return PeakTable(self.cap) if table is None else table

    def at(self, label: str, threshold: float) -> dict[tuple[Any, ...], KeyPeak]:
        """The alert keys that fire at `threshold` (a lower bound where not table(label).exact_at)."""
        return self.table(label).at(threshold)


def tunable_of(spec: DetectorSpec, key: str) -> Tunable | None:
    return next((t for t in spec.tunables if t.key == key), None)


def spec_named(name: str) -> DetectorSpec:
    for spec in DETECTORS:
        if spec.name == name:
            return spec
    raise ConfigError(f"--detector: no detector {name!r} (one of {', '.join(s.name for s in DETECTORS)})")


def _values(lo: float, hi: float, step: float, integral: bool, where: str) -> tuple[float, ...]:
    if not all(math.isfinite(x) for x in (lo, hi, step)):
        raise ConfigError(f"{where}: LO, HI and STEP must be finite numbers")
    if step <= 0:
        raise ConfigError(f"{where}: STEP must be above 0")
    if hi < lo:
        raise ConfigError(f"{where}: HI is below LO")
    if integral and not all(float(x).is_integer() for x in (lo, hi, step)):
        raise ConfigError(f"{where}: this threshold is a whole number; LO, HI and STEP must be too")
    n = int(math.floor((hi - lo) / step + EPSILON)) + 1
    if n > MAX_POINTS:
        raise ConfigError(f"{where}: {n} values; at most {MAX_POINTS}")
    return tuple(int(lo + i * step) if integral else round(lo + i * step, 9) for i in range(n))


def parse_grid(text: str) -> tuple[str, str, tuple[float, float, float]]:
    """'[detect.]DETECTOR.KEY=LO:HI:STEP' -> (detector, key, (lo, hi, step)); one clear error otherwise."""
    where = f"--grid {text!r}"
    name, sep, rng = text.partition("=")
    parts = rng.split(":")
    if not sep or len(parts) != 3:
        raise ConfigError(f"{where}: expected DETECTOR.KEY=LO:HI:STEP, e.g. port_scan.threshold=5:50:5")
    name = name.strip().removeprefix("detect.")
    detector, _, key = name.rpartition(".")
    try:
        lo, hi, step = (float(x) for x in parts)
    except ValueError:
        raise ConfigError(f"{where}: LO, HI and STEP must be numbers") from None
    return detector, key, (lo, hi, step)


def grids(cfg: Config, specs: Sequence[str] = (), only: str | None = None) -> list[Grid]:
    """The grids to sweep: every enabled detector's tunables (or only `only`'s), each on its
    declared default grid unless a --grid text replaces it."""
    given: dict[tuple[str, str], tuple[str, tuple[float, float, float]]] = {}
    for text in specs:
        detector, key, rng = parse_grid(text)
        spec = next((s for s in DETECTORS if s.name == detector), None)
        if spec is None or tunable_of(spec, key) is None:
            known = ", ".join(f"{s.name}.{t.key}" for s in DETECTORS for t in s.tunables)
            raise ConfigError(f"--grid {text!r}: {detector + '.' + key if detector else key!r} is not a "
                              f"tunable threshold (one of {known})")
        given[(detector, key)] = (text, rng)
    out = []
    for spec in DETECTORS:
        if (only and spec.name != only) or not getattr(cfg.detect, spec.name).enabled:
            continue
        section = getattr(cfg.detect, spec.name)
        meta = {f.name: f.metadata for f in dataclasses.fields(section)}
        for t in spec.tunables:
            current = getattr(section, t.key)
            integral = isinstance(current, int)
            text, rng = given.get((spec.name, t.key), (f"{spec.name}.{t.key} default grid", t.grid))
            values = _values(*rng, integral, f"--grid {text!r}" if (spec.name, t.key) in given else text)
            low = meta[t.key].get("min")
            if low is not None and values[0] < low:
                raise ConfigError(f"--grid {text!r}: LO {values[0]:g} is below the setting's minimum {low:g}")
            out.append(Grid(spec.name, t, values, current))
    return out


def lowered(cfg: Config, sweep: Sequence[Grid]) -> Config:
    """The config of the recording pass: each swept threshold at its lowest value. A setting
    another detector derives from a swept one is pinned to its value in effect
    (distributed_scan.member_threshold 0 = port_scan.threshold)."""
    sections = {spec.name: getattr(cfg.detect, spec.name) for spec in DETECTORS}
    for g in sweep:
        value = type(g.current)(g.lowest)
        sections[g.detector] = dataclasses.replace(sections[g.detector], **{g.tunable.key: value})
    ds = sections["distributed_scan"]
    if not ds.member_threshold:
        sections["distributed_scan"] = dataclasses.replace(ds, member_threshold=cfg.detect.port_scan.threshold)
    return dataclasses.replace(cfg, detect=type(cfg.detect)(sections))


class PeakRecorder:
    """Wraps a detector for the recording pass: its findings go to `record`, not to alerts.
    `fixed`: this instance's findings do not depend on the swept threshold (a slow window
    with its own explicit threshold), so they count at every value."""

    def __init__(self, inner: Detector, record: Callable[[Finding, bool], None], fixed: bool = False):
        self.inner = inner
        self.name = inner.name
        self.record = record
        self.fixed = fixed

    def observe(self, batch: PacketBatch) -> list[Finding]:
        for f in self.inner.observe(batch):
            self.record(f, self.fixed)
        return []

    def tick(self, now: float) -> list[Finding]:
        for f in self.inner.tick(now):
            self.record(f, self.fixed)
        return []

    def finish(self, now: float) -> list[Finding]:
        for f in self.inner.finish(now):
            self.record(f, self.fixed)
        return []

    def expire(self, now: float) -> None:
        self.inner.expire(now)

    def reconfigure(self, cfg: Any, *more: Any) -> None:
        self.inner.reconfigure(cfg, *more)

    def stats(self) -> dict[str, int]:
        return self.inner.stats()

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        return []  # tune writes no stats records


class Recorder:
    """Turns findings of the recording pass into Peaks."""

    def __init__(self, sweep: Sequence[Grid], cap: int = 100_000):
        self.peaks = Peaks(cap)
        self.sweep = {g.detector: [x for x in sweep if x.detector == g.detector] for g in sweep}

    def __call__(self, f: Finding, fixed: bool = False) -> None:
        key = (f.type, *f.identifier)
        mine = self.sweep.get(f.type)
        if not mine:
            self._table(self.peaks.untuned, f.type).keep(key, 0.0, f.src_ip)
            return
        g = next((x for x in mine if x.tunable.figure in f.evidence), None)
        if g is None or fixed:  # no figure, or not this threshold's: counted at every value
            g, figure = g or mine[0], math.inf
        else:
            figure = float(f.evidence[g.tunable.figure])
            used = f.evidence.get("threshold")
            if isinstance(used, (int, float)) and used > 0 and used != g.lowest:
                figure *= g.lowest / used  # a derived threshold (port_scan's slow window): threshold units
        self._table(self.peaks.by_grid, g.label).keep(key, figure, f.src_ip)

    def _table(self, tables: dict[str, PeakTable], name: str) -> PeakTable:
        table = tables.get(name)
        if table is None:
            table = tables[name] = PeakTable(self.peaks.cap)
        return table


OFF = 1 << 31  # a threshold no window reaches: switches one window of a two-window detector off


def instances(run_cfg: Config, sweep: Sequence[Grid], recorder: Recorder) -> list[Detector]:
    """The recording pass's detectors, in registry order. A detector with two windows whose
    second threshold follows the swept one (Tunable.slow) runs twice, one window each: the
    detector reports a key in one window only, so with one instance the short window's
    findings at the lowered threshold would hide the long window's figure."""
    shared = Shared(run_cfg, EVERY_EVALUATION)  # every evaluation over the lowered threshold is reported
    slow = {g.detector: g for g in sweep if g.tunable.slow}
    out: list[Detector] = []
    for spec in DETECTORS:
        section = getattr(run_cfg.detect, spec.name)
        if not section.enabled:
            continue
        g = slow.get(spec.name)
        if g is None:
            out.append(PeakRecorder(spec.build(run_cfg, shared), recorder))
            continue
        t = g.tunable
        explicit = getattr(section, t.slow)
        follows = max(2, round(getattr(section, t.key) * t.slow_factor))
        short = dataclasses.replace(section, **{t.slow: OFF})
        long = dataclasses.replace(section, **{t.key: OFF, t.slow: explicit or follows})
        for variant, fixed in ((short, False), (long, bool(explicit))):
            out.append(PeakRecorder(spec.build(_with_section(run_cfg, spec.name, variant), shared), recorder, fixed))
    return out


def _with_section(cfg: Config, name: str, section: Any) -> Config:
    sections = {s.name: getattr(cfg.detect, s.name) for s in DETECTORS}
    sections[name] = section
    return dataclasses.replace(cfg, detect=type(cfg.detect)(sections))


def record(cfg: Config, paths: Sequence[str], sweep: Sequence[Grid], only: str | None = None,
           progress: bool = True) -> Peaks:
    """The one pass: read every capture (as `read` does) with the lowered detectors."""
    run_cfg = lowered(cfg, sweep)
    if only:
        sections = {s.name: getattr(run_cfg.detect, s.name) for s in DETECTORS}
        sections = {n: c if n == only else dataclasses.replace(c, enabled=False) for n, c in sections.items()}
        run_cfg = dataclasses.replace(run_cfg, detect=type(run_cfg.detect)(sections))
    recorder = Recorder(sweep, run_cfg.alerts.max_identifiers)
    detectors = instances(run_cfg, sweep, recorder)
    engine = Engine(run_cfg, (), detectors)
    for path in paths:
        bar = Progress(path, enabled=progress)
        try:
            for raw in read_batches(path, run_cfg.general.batch_size):
                engine.feed(raw)
                bar.update(raw)
        finally:
            bar.close()
    engine.close()
    recorder.peaks.packets = engine.stats.packets
    return recorder.peaks
