"""Per-sensor roll-ups, shared by the SQLite and PostgreSQL writers.

The fleet dashboard filters charts by sensor and groups alerts into incidents by attacking
source. Both read these small tables instead of scanning a million alerts:

- `sensor_minutes` (sensor, minute, type) -> count: alerts per minute and per type, per sensor;
- `source_activity` (src_ip, sensor, type) -> count, first and last alert time: incidents.

Only loud (not muted) alerts count, as in the other roll-ups. The tables are in
store/sensor_tables.py; this module computes what a batch adds to them (the PostgreSQL
writer; SQLite's triggers do the same row by row).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .schema import addr_key


def sensor_of(record: dict[str, Any]) -> str:
    """The stored sensor name: EVE `host`, '' for records from before sensors had names."""
    return str(record.get("host") or "")


def alert_row(a: dict[str, Any], ts: float) -> tuple[Any, ...]:
    """(ts, type, severity, src_ip, dest_ip, src_key, dest_key, src_port, dest_port, proto, message, muted, sensor).
    EVE omits unknown fields, so every optional one is read with .get."""
    src, dest = a.get("src_ip"), a.get("dest_ip")
    return (ts, a["type"], a["alert"]["severity"], src, dest, addr_key(src), addr_key(dest), a.get("src_port"),
            a.get("dest_port"), a.get("proto"), a.get("message", ""), 1 if a.get("muted") else 0, sensor_of(a))


@dataclass
class Rollup:
    """What one batch of alerts adds to every roll-up table."""

    minutes: dict[tuple[int, str], int] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    sources: dict[str, tuple[int, float]] = field(default_factory=dict)
    hits: dict[int, int] = field(default_factory=dict)
    sensor_minutes: dict[tuple[str, int, str], int] = field(default_factory=dict)
    activity: dict[tuple[str, str, str], tuple[int, float, float]] = field(default_factory=dict)
    sensor_sources: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)

    def add(self, a: dict[str, Any], ts: float) -> None:
        if a.get("muted"):
            self.hits[a["muted"]] = self.hits.get(a["muted"], 0) + 1
            return
        t, minute, sensor = a["type"], int(ts // 60), sensor_of(a)
        self.minutes[(minute, t)] = self.minutes.get((minute, t), 0) + 1
        self.types[t] = self.types.get(t, 0) + 1
        self.sensor_minutes[(sensor, minute, t)] = self.sensor_minutes.get((sensor, minute, t), 0) + 1
        src = a.get("src_ip")
        if src:
            n, last = self.sources.get(src, (0, ts))
            self.sources[src] = (n + 1, max(last, ts))
            n, first, last = self.activity.get((src, sensor, t), (0, ts, ts))
            self.activity[(src, sensor, t)] = (n + 1, min(first, ts), max(last, ts))
            n, last = self.sensor_sources.get((sensor, src), (0, ts))
            self.sensor_sources[(sensor, src)] = (n + 1, max(last, ts))


def upserts(r: Rollup, greatest: str, least: str) -> Iterable[tuple[str, list[tuple[Any, ...]]]]:
    """(SQL with ? placeholders, rows) for each roll-up table; `greatest`/`least` are the
    dialect's two-argument max/min (SQLite: max/min, PostgreSQL: greatest/least)."""
    yield ("INSERT INTO alert_minutes (minute, type, count) VALUES (?,?,?) ON CONFLICT (minute, type) DO UPDATE "
           "SET count = alert_minutes.count + excluded.count", [(m, t, n) for (m, t), n in r.minutes.items()])
    yield ("INSERT INTO alert_types (type, count) VALUES (?,?) ON CONFLICT (type) DO UPDATE "
           "SET count = alert_types.count + excluded.count", list(r.types.items()))
    yield ("INSERT INTO alert_sources (src_ip, count, last_ts) VALUES (?,?,?) ON CONFLICT (src_ip) DO UPDATE "
           f"SET count = alert_sources.count + excluded.count, last_ts = {greatest}(alert_sources.last_ts, excluded.last_ts)",
           [(ip, n, last) for ip, (n, last) in r.sources.items()])
    yield ("UPDATE mutes SET hits = hits + ? WHERE id = ?", [(n, m) for m, n in r.hits.items()])
    yield from sensor_upserts(r, greatest, least)


def sensor_upserts(r: Rollup, greatest: str, least: str) -> Iterable[tuple[str, list[tuple[Any, ...]]]]:
    """Only the per-sensor tables (what the SQLite writer adds to its own roll-ups)."""
    yield ("INSERT INTO sensor_minutes (sensor, minute, type, count) VALUES (?,?,?,?) "
           "ON CONFLICT (sensor, minute, type) DO UPDATE SET count = sensor_minutes.count + excluded.count",
           [(s, m, t, n) for (s, m, t), n in r.sensor_minutes.items()])
    yield ("INSERT INTO source_activity (src_ip, sensor, type, count, first_ts, last_ts) VALUES (?,?,?,?,?,?) "
           "ON CONFLICT (src_ip, sensor, type) DO UPDATE SET count = source_activity.count + excluded.count, "
           f"first_ts = {least}(source_activity.first_ts, excluded.first_ts), "
           f"last_ts = {greatest}(source_activity.last_ts, excluded.last_ts)",
           [(ip, s, t, n, f, last) for (ip, s, t), (n, f, last) in r.activity.items()])
    yield ("INSERT INTO sensor_sources (sensor, src_ip, count, last_ts) VALUES (?,?,?,?) "
           "ON CONFLICT (sensor, src_ip) DO UPDATE SET count = sensor_sources.count + excluded.count, "
           f"last_ts = {greatest}(sensor_sources.last_ts, excluded.last_ts)",
           [(s, ip, n, last) for (s, ip), (n, last) in r.sensor_sources.items()])
