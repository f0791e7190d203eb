"""`wirewatch tune`'s command body: the table, the JSON document and the baseline's
suggested thresholds (with the config lines to paste), from the peaks tune.record gathers;
with a store (`--db`, `output.db`) the document is saved there for the dashboard's tune page."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from .config import Config, ConfigError, sensor_name
from .schema import flow_id
from .tune import Grid, Peaks, PeakTable, grids, record, spec_named

SHOWN_SOURCES = 5
DEFAULT_MARGIN = 1.25


def capped(table: PeakTable, tuned: bool = True) -> str | None:
    """What the cap on alert keys (alerts.max_identifiers) did to this table's counts, or None."""
    if not table.evicted:
        return None
    if tuned:
        return (f"{table.evicted:,} evictions of alert keys (at most {table.cap:,} kept, alerts.max_identifiers; the "
                f"lowest peaks first): counts at values up to {table.floor:g} are lower bounds (at least the number "
                f"shown), above it exact")
    return (f"{table.evicted:,} evictions of alert keys (at most {table.cap:,} kept, alerts.max_identifiers; the "
            f"oldest first): the count is a lower bound")


def sweep_rows(peaks: Peaks, sweep: Sequence[Grid]) -> list[dict[str, Any]]:
    """Per threshold: for each grid value (and the value in effect), the alerts and their sources;
    `at_least` where the cap on alert keys made the count a lower bound."""
    out = []
    for g in sweep:
        table = peaks.table(g.label)
        rows = []
        for value in sorted(set(g.values) | {g.current}):
            fired = table.at(value)
            sources = sorted({s for kp in fired.values() for s in kp.sources})
            rows.append({"value": value, "alerts": len(fired), "at_least": not table.exact_at(value),
                         "sources": sources, "current": value == g.current})
        now = table.at(g.current)
        out.append({"detector": g.detector, "key": g.tunable.key, "figure": g.tunable.figure, "current": g.current,
                    "approximate": g.tunable.note or None, "rows": rows,
                    "evicted": table.evicted, "exact_above": table.floor, "capped": capped(table),
                    "flow_ids_in_effect": sorted(flow_id(k) for k in now)})
    return out


def untuned_rows(peaks: Peaks) -> list[dict[str, Any]]:
    """Detectors with no threshold (blacklist, suspicious_port): what they raise whatever the grid."""
    return [{"detector": name, "alerts": len(t.keys), "at_least": t.evicted > 0, "evicted": t.evicted,
             "capped": capped(t, tuned=False), "sources": sorted({s for kp in t.keys.values() for s in kp.sources}),
             "flow_ids": sorted(flow_id(k) for k in t.keys)} for name, t in sorted(peaks.untuned.items())]


def suggest(peaks: Peaks, sweep: Sequence[Grid], margin: float) -> list[dict[str, Any]]:
    """Per threshold, the smallest value that keeps the baseline silent with `margin`
    (peak x margin, rounded up, above the peak), never below the grid's lowest value: below
    it the pass saw nothing, so it cannot say the baseline stays silent."""
    out = []
    for g in sweep:
        keys = peaks.table(g.label).keys  # the cap evicts the lowest peaks: the highest is always kept
        peak = max((kp.peak for kp in keys.values()), default=None)
        integral = isinstance(g.current, int)
        if peak is None:
            value: float | None = g.lowest
            why = f"silent even at the grid's lowest value {g.lowest:g}"
        elif math.isinf(peak):
            value, why = None, "its findings carry no figure to compare: no suggestion"
        else:
            raw = peak * margin
            value = max(math.floor(peak) + 1, math.ceil(raw)) if integral else max(math.ceil(raw * 100) / 100, peak + 0.01)
            value = max(value, g.lowest)
            top = max(keys.values(), key=lambda kp: kp.peak)
            who = ", ".join(sorted(top.sources)[:SHOWN_SOURCES]) or "no single source"
            why = f"baseline peak {peak:g} ({who}) x {margin:g}"
        out.append({"detector": g.detector, "key": g.tunable.key, "current": g.current, "peak": peak,
                    "suggested": value, "why": why})
    return out


def config_lines(suggestions: Sequence[dict[str, Any]]) -> str:
    """TOML to paste: one [detect.<name>] section per detector with a suggestion."""
    by: dict[str, list[str]] = {}
    for s in suggestions:
        if s["suggested"] is not None:
            v = s["suggested"]
            by.setdefault(s["detector"], []).append(f"{s['key']} = {v:g}" if isinstance(v, float) else f"{s['key']} = {v}")
    return "\n".join(f"[detect.{name}]\n" + "\n".join(lines) + "\n" for name, lines in by.items()).rstrip() + "\n"


def _sources_text(sources: Sequence[str]) -> str:
    more = len(sources) - SHOWN_SOURCES
    return ", ".join(sources[:SHOWN_SOURCES]) + (f" (+{more})" if more > 0 else "")


def render_table(doc: dict[str, Any]) -> str:
    lines = [f"== wirewatch tune: {', '.join(os.path.basename(c) for c in doc['captures'])} "
             f"({doc['packets']:,} packets) ==" if doc["captures"] else "== wirewatch tune =="]
    for t in doc["thresholds"]:
        lines.append("")
        lines.append(f"{t['detector']}.{t['key']}  (compared with evidence.{t['figure']}; now {t['current']:g})")
        lines.append(f"  {'value':>10}  {'alerts':>6}  sources")
        for r in t["rows"]:
            mark = "*" if r["current"] else " "
            alerts = f"{'>=' if r.get('at_least') else ''}{r['alerts']}"
            lines.append(f"{mark} {r['value']:>10g}  {alerts:>6}  {_sources_text(r['sources'])}")
        if t["approximate"]:
            lines.append(f"  approximate: {t['approximate']}")
        if t.get("capped"):
            lines.append(f"  capped: {t['capped']}")
    if doc["untuned"]:
        lines.append("")
        lines.append("no threshold (the same at every value):")
        for u in doc["untuned"]:
            least = "at least " if u.get("at_least") else ""
            lines.append(f"  {u['detector']}: {least}{u['alerts']} alert(s)  {_sources_text(u['sources'])}")
            if u.get("capped"):
                lines.append(f"    capped: {u['capped']}")
    if doc.get("baseline"):
        b = doc["baseline"]
        lines.append("")
        lines.append(f"== suggested thresholds from baseline {', '.join(os.path.basename(c) for c in b['captures'])} "
                     f"(margin x{b['margin']:g}) ==")
        for s in b["suggestions"]:
            value = "none" if s["suggested"] is None else f"{s['suggested']:g}"
            lines.append(f"  {s['detector']}.{s['key']}: {value} (now {s['current']:g}; {s['why']})")
        lines.append("")
        lines.append("# paste into your config file:")
        lines.append(b["config"].rstrip())
    lines.append("")
    lines.append("* = the value in effect. Counts are distinct alerts (detector and identifier, as the alert "
                 "manager deduplicates), from one pass: see each 'approximate' line; >= = a lower bound "
                 "(see its 'capped' line).")
    return "\n".join(lines)


def cmd_tune(args: argparse.Namespace, cfg: Config) -> int:
    if not args.files and not args.baseline:
        raise ConfigError("tune: give at least one CAPTURE or --baseline CAPTURE")
    if not (math.isfinite(args.margin) and args.margin >= 1):
        raise ConfigError(f"--margin {args.margin!r}: must be a number of at least 1")
    if args.detector:
        spec_named(args.detector)
    sweep = grids(cfg, args.grid, args.detector)
    if cfg.output.db:  # a store a newer wirewatch migrated is refused now, not after the pass
        from .store.tune_runs import check_store

        check_store(cfg.output.db)
    progress = not args.no_progress
    doc: dict[str, Any] = {"captures": list(args.files), "packets": 0, "thresholds": [], "untuned": []}
    if args.files:
        peaks = record(cfg, args.files, sweep, args.detector, progress)
        doc.update(packets=peaks.packets, thresholds=sweep_rows(peaks, sweep), untuned=untuned_rows(peaks))
    if args.baseline:
        base = record(cfg, args.baseline, sweep, args.detector, progress)
        suggestions = suggest(base, sweep, args.margin)
        doc["baseline"] = {"captures": list(args.baseline), "packets": base.packets, "margin": args.margin,
                           "suggestions": suggestions, "config": config_lines(suggestions),
                           "untuned": untuned_rows(base)}
    if args.png:
        from .tune_chart import write_png  # matplotlib: imported only when a chart is asked for

        write_png(doc, args.png)
    if cfg.output.db:  # --db or the configured store: the dashboard's tune page shows it
        from .store.postgres_schema import shown
        from .store.tune_runs import save_run

        run_id = save_run(cfg.output.db, doc, sensor_name(cfg.general))
        print(f"wirewatch: tune run {run_id} saved to {shown(cfg.output.db)} (the dashboard's /tune?run={run_id})", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    else:
        print(render_table(doc))
    if args.png:
        print(f"wirewatch: chart written to {args.png}", file=sys.stderr)
    return 0
