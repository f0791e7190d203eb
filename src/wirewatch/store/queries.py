"""Read-only queries the dashboard and API need (the sensor's SqliteSink is the writer).

Lists use keyset pagination (`before` = an alert id) so page 1000 costs what page 1 does,
and the overview reads roll-up tables, so both stay fast with a million alerts.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from .schema import cidr_range


class QueryError(ValueError):
    """A bad filter value; the message names the field."""


@dataclass
class AlertFilter:
    type: str = ""
    severity: int | None = None
    src: str = ""  # address or CIDR
    dest: str = ""
    port: int | None = None
    since: float | None = None
    until: float | None = None
    q: str = ""
    acknowledged: bool | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 50
    sensor: str = ""


class Store:
    def __init__(self, path: str):
        self.path = path
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row

    def _where(self, f: AlertFilter) -> tuple[str, list[Any]]:
        sql, args = ["1=1"], []
        if f.type:
            sql.append("type = ?")
            args.append(f.type)
        if f.severity is not None:
            sql.append("severity = ?")
            args.append(f.severity)
        for col, value in (("src_key", f.src), ("dest_key", f.dest)):
            if value:
                try:
                    lo, hi = cidr_range(value)
                except ValueError:
                    raise QueryError(f"{col.split('_')[0]}: not an address or CIDR: {value!r}") from None
                sql.append(f"{col} BETWEEN ? AND ?")
                args += [lo, hi]
        if f.port is not None:
            sql.append("(dest_port = ? OR src_port = ?)")
            args += [f.port, f.port]
        for value, cond in ((f.since, "ts >= ?"), (f.until, "ts <= ?"), (f.before, "id < ?"), (f.after, "id > ?")):
            if value is not None:
                sql.append(cond)
                args.append(value)
        if f.q:
            sql.append("(message LIKE ? ESCAPE '\\' OR record LIKE ? ESCAPE '\\')")
            pat = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pat, pat]
        if f.acknowledged is not None:
            sql.append("acknowledged = ?")
            args.append(1 if f.acknowledged else 0)
        return " AND ".join(sql), args

    def alerts(self, f: AlertFilter) -> list[dict[str, Any]]:
        where, args = self._where(f)
        order = "ASC" if f.after is not None and f.before is None else "DESC"
        rows = self.conn.execute(
            f"SELECT id, ts, type, severity, src_ip, dest_ip, src_port, dest_port, proto, message, acknowledged, muted "
            f"FROM alerts WHERE {where} ORDER BY id {order} LIMIT ?", (*args, f.limit)).fetchall()
        out = [dict(r) for r in rows]
        return sorted(out, key=lambda r: -r["id"])

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["record"] = json.loads(out["record"])
        return out

    def latest_id(self) -> int:
        return self.conn.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]

    def overview(self, minutes: int = 60) -> dict[str, Any]:
        c = self.conn
        last = c.execute("SELECT max(minute) FROM alert_minutes").fetchone()[0]
        per_minute: list[dict[str, Any]] = []
        if last is not None:
            rows = c.execute("SELECT minute, sum(count) AS n FROM alert_minutes WHERE minute > ? GROUP BY minute "
                             "ORDER BY minute", (last - minutes,)).fetchall()
            per_minute = [{"t": r["minute"] * 60, "alerts": r["n"]} for r in rows]
        by_type = {r["type"]: r["count"] for r in c.execute(
            "SELECT type, count FROM alert_types WHERE count > 0 ORDER BY count DESC")}
        top = [dict(r) for r in c.execute("SELECT src_ip, count FROM alert_sources ORDER BY count DESC LIMIT 10")]
        stats = [json.loads(r["record"]) | {"_ts": r["ts"]} for r in c.execute(
            "SELECT ts, record FROM stats ORDER BY id DESC LIMIT 120")][::-1]
        return {"alerts_per_minute": per_minute, "alerts_by_type": by_type, "top_sources": top,
                "packets_per_s": _rates(stats), "health": _health(stats), "top_talkers": _talkers(stats),
                "total_alerts": sum(by_type.values())}

    def mutes(self) -> list[dict[str, Any]]:
        now = time.time()
        return [dict(r) | {"active": r["until"] > now} for r in
                self.conn.execute("SELECT * FROM mutes ORDER BY id DESC LIMIT 200")]

    def counts_by_type(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT type, count FROM alert_types")}

    def latest_stats(self) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT record FROM stats ORDER BY id DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self.conn.close()


def _rates(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Packets/s between consecutive stats events; for an analysed capture (its event
    carries a packet-time timeline) the capture's own rate over its packet time."""
    if stats and "timeline" in stats[-1]["stats"]:
        return stats[-1]["stats"]["timeline"]
    out = []
    for prev, cur in zip(stats, stats[1:]):
        dt = cur["_ts"] - prev["_ts"]
        if dt > 0:
            dp = cur["stats"]["decoder"]["pkts"] - prev["stats"]["decoder"]["pkts"]
            out.append({"t": cur["_ts"], "pps": max(0.0, dp / dt)})
    return out


def _health(stats: list[dict[str, Any]]) -> dict[str, Any]:
    if not stats:
        return {}
    s = stats[-1]
    st = s["stats"]
    return {"interface": s.get("in_iface"), "uptime_s": st.get("uptime"), "updated": s.get("timestamp"),
            "packets": st["decoder"]["pkts"], "kernel_packets": st["capture"]["kernel_packets"],
            "kernel_drops": st["capture"]["kernel_drops"], "decode_errors": st["decoder"]["invalid"]}


def _talkers(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return stats[-1]["stats"].get("top_talkers", []) if stats else []
