"""What a SIGHUP reload can change in a running engine, and what needs a restart.

Thresholds, ratios, port lists, blocklists, timeouts and the alert manager's cooldown,
escalation and storm settings take effect at once (each detector's `configure`); so do the
blocklist feeds (feeds.reattach) and the webhook (sinks/webhook.reconfigure). Windows
and caps size state that already exists, a detector switched on or off would need state
built or dropped, the general section shapes capture and slicing, and the store's sink
(retention, size, spool) is opened once at start: changing any of those is reported at
reload as waiting for a restart, never silently ignored, and keep their running values
(`running`) until it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .detect.registry import names

# keys (in any detect.* section, or alerts/general) that only a restart applies
RESTART_ONLY = {"enabled", "window", "slow_window", "max_targets", "max_sources", "max_probes", "max_pairs",
                "max_attempts", "max_identifiers", "max_storm_sources"}
RESTART_SECTIONS = ("general", "output", "web", "enrich", "store")  # the store sink is opened once, at start
RELOADABLE = {"general.sensor", "output.webhook", "output.webhook_min_severity", "output.webhook_queue"}


def restart_only_changes(old: Any, new: Any) -> list[str]:
    """Dotted keys whose new value differs from the running one and needs a restart."""
    out: list[str] = []
    for name in RESTART_SECTIONS:
        out += [f"{name}.{k}" for k in _changed(getattr(old, name), getattr(new, name))
                if f"{name}.{k}" not in RELOADABLE]
    out += [f"alerts.{k}" for k in _changed(old.alerts, new.alerts) if k in RESTART_ONLY]
    for name in names():
        a, b = getattr(old.detect, name), getattr(new.detect, name)
        out += [f"detect.{name}.{k}" for k in _changed(a, b) if k in RESTART_ONLY]
    return out


def running(old: Any, new: Any) -> Any:
    """The reloaded config as the engine runs it: `new`, with every key restart_only_changes
    names kept at its running value (general.expire_interval still cuts the slices, a
    detector's window and caps still size its state), so what a reload says waits for a
    restart does wait."""
    keep = set(restart_only_changes(old, new))
    if not keep:
        return new

    def section(a: Any, b: Any, prefix: str) -> Any:
        held = {f.name: getattr(a, f.name) for f in dataclasses.fields(a) if f"{prefix}.{f.name}" in keep}
        return dataclasses.replace(b, **held) if held else b

    top = {name: section(getattr(old, name), getattr(new, name), name) for name in (*RESTART_SECTIONS, "alerts")}
    detect = type(new.detect)({name: section(getattr(old.detect, name), getattr(new.detect, name), f"detect.{name}")
                               for name in names()})
    return dataclasses.replace(new, detect=detect, **top)


def _changed(a: Any, b: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
