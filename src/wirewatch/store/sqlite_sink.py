"""SQLite sink: the single writer of the alert store.

One transaction per packet batch (an alert storm costs one commit per batch), WAL mode
so the dashboard reads while the sensor writes, retention by age and size enforced
while running, and mutes read back every few seconds so the dashboard can silence a
detector for a source while the sensor runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import sqlite3
import time
from typing import Any

from .schema import addr_key, migrate, store_files

MUTE_REFRESH_S = 2.0
RETENTION_EVERY = 500  # alerts between retention checks
RETENTION_PERIOD_S = 3600.0  # and at least hourly (with the stats events)


class Mutes:
    """Active mutes: (type, network, dest_port or None, until)."""

    def __init__(self, rows: list[tuple[int, str, str, int | None, float]]):
        self.rows = [(mid, t, ipaddress.ip_network(c, strict=False), p, u) for mid, t, c, p, u in rows]

    def match(self, alert: dict[str, Any], now: float) -> int | None:
        for mid, typ, net, port, until in self.rows:
            if until < now or typ not in (alert["type"], "*"):
                continue
            if port is not None and alert.get("dest_port") != port:
                continue
            for ip in (alert.get("src_ip"), alert.get("dest_ip")):
                if ip and ipaddress.ip_address(ip).version == net.version and ipaddress.ip_address(ip) in net:
                    return mid
        return None


class SqliteSink:
    name = "sqlite"
    keeps_muted = True

    def __init__(self, path: str, retention_days: float = 30.0, max_mb: float = 1024.0, clock=time.time):
        self.path = path
        self.retention_days = retention_days
        self.max_bytes = max_mb * 1024 * 1024
        self.clock = clock
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            migrate(self.conn)
        except sqlite3.Error as exc:
            raise OSError(f"{path}: cannot open alert store: {exc}") from None
        self.mutes = Mutes([])
        self.mutes_loaded = 0.0
        self.since_retention = 0
        self.last_retention = self.clock()
        self.muted_count = 0

    def paths(self) -> list[str]:
        """Files the sensor hands to its unprivileged user before dropping root."""
        return store_files(self.path)

    def refresh_mutes(self, force: bool = False) -> None:
        now = self.clock()
        if force or now - self.mutes_loaded >= MUTE_REFRESH_S:
            rows = self.conn.execute("SELECT id, type, cidr, dest_port, until FROM mutes WHERE until > ?", (now,)).fetchall()
            self.mutes = Mutes(rows)
            self.mutes_loaded = now

    def filter(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Mark alerts that a mute covers (alert["muted"] = mute id); called before other sinks."""
        self.refresh_mutes()
        now = self.clock()
        for a in alerts:
            mid = self.mutes.match(a, now)
            if mid is not None:
                a["muted"] = mid
        return alerts

    def write(self, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        rows, minutes, sources, hits = [], {}, {}, {}
        for a in alerts:
            ts = _epoch(a["timestamp"])
            muted = 1 if a.get("muted") else 0
            rows.append((ts, a["type"], a["alert"]["severity"], a["src_ip"], a["dest_ip"], addr_key(a["src_ip"]),
                         addr_key(a["dest_ip"]), a["src_port"], a["dest_port"], a["proto"], a["message"],
                         json.dumps(a), muted))
            if muted:
                hits[a["muted"]] = hits.get(a["muted"], 0) + 1
                continue
            key = (int(ts // 60), a["type"])
            minutes[key] = minutes.get(key, 0) + 1
            if a["src_ip"]:
                c, last = sources.get(a["src_ip"], (0, 0.0))
                sources[a["src_ip"]] = (c + 1, max(last, ts))
        c = self.conn
        c.execute("BEGIN")
        c.executemany("INSERT INTO alerts (ts, type, severity, src_ip, dest_ip, src_key, dest_key, src_port, dest_port,"
                      " proto, message, record, muted) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        c.executemany("INSERT INTO alert_minutes VALUES (?,?,?) ON CONFLICT(minute, type) DO UPDATE SET "
                      "count = count + excluded.count", [(m, t, n) for (m, t), n in minutes.items()])
        c.executemany("INSERT INTO alert_sources VALUES (?,?,?) ON CONFLICT(src_ip) DO UPDATE SET "
                      "count = count + excluded.count, last_ts = max(last_ts, excluded.last_ts)",
                      [(ip, n, last) for ip, (n, last) in sources.items()])
        types: dict[str, int] = {}
        for (_, t), n in minutes.items():
            types[t] = types.get(t, 0) + n
        c.executemany("INSERT INTO alert_types VALUES (?,?) ON CONFLICT(type) DO UPDATE SET count = count + excluded.count",
                      list(types.items()))
        c.executemany("UPDATE mutes SET hits = hits + ? WHERE id = ?", [(n, m) for m, n in hits.items()])
        c.execute("COMMIT")
        self.muted_count += sum(hits.values())
        self.since_retention += len(rows)
        if self.since_retention >= RETENTION_EVERY:
            self.since_retention = 0
            self.enforce_retention()

    def write_event(self, record: dict[str, Any]) -> None:
        if record.get("event_type") == "stats":
            self.conn.execute("INSERT INTO stats (ts, record) VALUES (?, ?)", (self.clock(), json.dumps(record)))
            if self.clock() - self.last_retention >= RETENTION_PERIOD_S:  # a quiet sensor still ages out
                self.enforce_retention()

    def enforce_retention(self) -> None:
        """Delete alerts older than retention_days, then the oldest until the file fits max size."""
        self.last_retention = self.clock()
        c = self.conn
        cutoff = self.clock() - self.retention_days * 86400
        self._delete_alerts("ts < ?", (cutoff,))
        c.execute("DELETE FROM stats WHERE ts < ?", (cutoff,))
        c.execute("DELETE FROM alert_minutes WHERE minute < ?", (int(cutoff // 60),))
        page, count = (c.execute("PRAGMA page_size").fetchone()[0], c.execute("PRAGMA page_count").fetchone()[0])
        free = c.execute("PRAGMA freelist_count").fetchone()[0]
        used = page * (count - free)
        if used > self.max_bytes:
            total = c.execute("SELECT count(*) FROM alerts").fetchone()[0]
            drop = max(1, int(total * (1 - self.max_bytes / used)) + total // 20)
            self._delete_alerts("id IN (SELECT id FROM alerts ORDER BY id LIMIT ?)", (drop,))

    def _delete_alerts(self, where: str, args: tuple) -> None:
        """Delete alerts and keep the per-type and per-source totals true."""
        c = self.conn
        c.execute("BEGIN")
        gone = c.execute(f"SELECT type, count(*) FROM alerts WHERE muted = 0 AND {where} GROUP BY type", args).fetchall()
        c.executemany("UPDATE alert_types SET count = max(0, count - ?) WHERE type = ?", [(n, t) for t, n in gone])
        srcs = c.execute(f"SELECT src_ip, count(*) FROM alerts WHERE muted = 0 AND src_ip IS NOT NULL AND {where} "
                         "GROUP BY src_ip", args).fetchall()
        c.executemany("UPDATE alert_sources SET count = count - ? WHERE src_ip = ?", [(n, ip) for ip, n in srcs])
        c.execute("DELETE FROM alert_sources WHERE count <= 0")
        c.execute(f"DELETE FROM alerts WHERE {where}", args)
        c.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def _epoch(ts: str) -> float:
    """EVE timestamp -> epoch seconds (fromisoformat is C code: no lazy import after a privilege drop)."""
    return dt.datetime.fromisoformat(ts).timestamp()
