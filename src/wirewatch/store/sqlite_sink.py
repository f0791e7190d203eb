"""SQLite sink: the single writer of the alert store.

One transaction per packet batch (an alert storm costs one commit per batch), WAL mode
so the dashboard reads while the sensor writes, a spool when the store cannot take
writes, retention by insertion age and size enforced while running, and mutes read back every few seconds so the dashboard can silence a
detector for a source while the sensor runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sqlite3
import sys
import time
from typing import Any, TextIO

from ..sinks import SinkBase
from .rollups import Rollup, upserts
from .schema import addr_key, migrate, record_json, spool_path, store_files
from .spool import Delivery, Entry, Spool

MUTE_REFRESH_S = 2.0
BUSY_TIMEOUT_MS = 250  # per attempt; Delivery retries with backoff, then spools
OPEN_TIMEOUT_S = 5.0  # opening and migrating may wait longer (once, at start)
CLOSE_S = 1.5  # at exit, replay the spool for at most this long (a stop must end within 5 s)
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


class SqliteSink(SinkBase):
    """The one writer of alerts and stats into the store.

    Each write is one IMMEDIATE transaction (the write lock is taken up front, waiting up
    to BUSY_TIMEOUT_MS for the dashboard's short triage writes), rolled back on any error.
    Failed writes are retried with backoff; when the store stays unavailable the records
    go to the spool next to the database and are replayed in order once it takes writes
    again (store/spool.py), skipping ids already stored.
    """

    name = "sqlite"
    keeps_muted = True

    def __init__(self, path: str, retention_days: float = 30.0, max_mb: float = 1024.0, clock=time.time,
                 log: TextIO | None = None):
        self.path = path
        self.retention_days = retention_days
        self.max_bytes = max_mb * 1024 * 1024
        self.clock = clock
        self.log = log or sys.stderr
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=OPEN_TIMEOUT_S)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            migrate(self.conn)
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.conn.execute("PRAGMA cache_size = -65536")  # 64 MB: nine indexes stay in memory in a storm
        except sqlite3.Error as exc:
            raise OSError(f"{path}: cannot open alert store: {exc}") from None
        self.mutes = Mutes([])
        self.mutes_loaded = 0.0
        self.since_retention = 0
        self.last_retention = self.clock()
        self.retention_errors = 0
        self.stored = 0  # alert rows this process inserted
        self.spool = Spool(spool_path(path))
        self.delivery = Delivery(self._store, self.spool, (sqlite3.Error,), log=self.log, what=path)
        if self.spool.pending:  # left by an earlier run that could not reach the store
            self.delivery.flush()

    def paths(self) -> list[str]:
        """Files the sensor hands to its unprivileged user before dropping root (the spool
        files are created now so that they can be handed over too)."""
        self.spool.create()
        return store_files(self.path)

    def refresh_mutes(self, force: bool = False) -> None:
        now = self.clock()
        if force or now - self.mutes_loaded >= MUTE_REFRESH_S:
            self.mutes_loaded = now
            try:
                rows = self.conn.execute("SELECT id, type, cidr, dest_port, until FROM mutes WHERE until > ?",
                                         (now,)).fetchall()
            except sqlite3.Error:
                return  # the store is busy: keep the mutes we have, try again later
            self.mutes = Mutes(rows)

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
        self.delivery.deliver(alerts)
        self.since_retention += len(alerts)
        if self.since_retention >= RETENTION_EVERY:
            self.since_retention = 0
            self.enforce_retention()

    def write_event(self, record: dict[str, Any]) -> None:
        if record.get("event_type") == "stats":
            self.delivery.deliver([record])
            if self.clock() - self.last_retention >= RETENTION_PERIOD_S:  # a quiet sensor still ages out
                self.enforce_retention()

    def _store(self, entries: list[Entry]) -> None:
        """Store entries (alerts and stats events) in one transaction, or roll back and raise."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            uids = [e.uid for e in entries if e.uid is not None]
            if uids:  # a replay: skip what an interrupted earlier replay already stored
                seen = _stored_uids(c, uids)
                entries = [e for e in entries if e.uid not in seen]
            alerts = [e for e in entries if e.record.get("event_type") != "stats"]
            if alerts:
                self._insert_alerts(alerts)
            now = self.clock()
            c.executemany("INSERT INTO stats (ts, record) VALUES (?, ?)",
                          [(now, record_json(e.record)) for e in entries if e.record.get("event_type") == "stats"])
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        self.stored += len(alerts)

    def _insert_alerts(self, entries: list[Entry]) -> None:
        """The rows and, in the same pass, what they add to every roll-up (rollups.Rollup)."""
        rows = []
        rollup = Rollup()
        for e in entries:
            a = e.record
            ts = _epoch(a["timestamp"])
            src, dest = a.get("src_ip"), a.get("dest_ip")  # EVE omits what is unknown
            rows.append((ts, a["type"], a["alert"]["severity"], src, dest, addr_key(src), addr_key(dest),
                         a.get("src_port"), a.get("dest_port"), a.get("proto"), a["message"], record_json(a),
                         1 if a.get("muted") else 0, e.uid))
            rollup.add(a, ts)
        c = self.conn
        c.executemany("INSERT INTO alerts (ts, type, severity, src_ip, dest_ip, src_key, dest_key, src_port, dest_port,"
                      " proto, message, record, muted, uid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        c.execute("INSERT OR REPLACE INTO alert_batches VALUES ((SELECT max(id) FROM alerts), ?)", (self.clock(),))
        for sql, args in upserts(rollup, "max", "min"):
            if args:
                c.executemany(sql, args)

    def enforce_retention(self) -> None:
        """Delete alerts stored more than retention_days ago (insertion time, not packet time:
        an analysed capture from 2023 is kept like live alerts), then the oldest stored until
        the file fits max size. A busy store skips it until next time."""
        self.last_retention = self.clock()
        try:
            self._retention()
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self.retention_errors += 1
            if self.retention_errors == 1:
                print(f"wirewatch: {self.path}: retention skipped, store busy: {exc} (retrying later)", file=self.log)

    def _retention(self) -> None:
        c = self.conn
        cutoff = self.clock() - self.retention_days * 86400
        last = c.execute("SELECT max(last_id) FROM alert_batches WHERE inserted < ?", (cutoff,)).fetchone()[0]
        if last is not None:
            self._delete_through(last)
        c.execute("DELETE FROM stats WHERE ts < ?", (cutoff,))
        page, count = (c.execute("PRAGMA page_size").fetchone()[0], c.execute("PRAGMA page_count").fetchone()[0])
        free = c.execute("PRAGMA freelist_count").fetchone()[0]
        used = page * (count - free)
        if used > self.max_bytes:
            total = c.execute("SELECT count(*) FROM alerts").fetchone()[0]
            drop = max(1, int(total * (1 - self.max_bytes / used)) + total // 20)
            last = c.execute("SELECT id FROM alerts ORDER BY id LIMIT 1 OFFSET ?", (min(drop, total) - 1,)).fetchone()
            if last is not None:
                self._delete_through(last[0])

    def _delete_through(self, last_id: int) -> None:
        """Delete alerts with id <= last_id and keep the roll-ups (per type, source and minute) true."""
        c = self.conn
        where, args = "id <= ?", (last_id,)
        c.execute("BEGIN IMMEDIATE")
        try:
            gone = c.execute(f"SELECT CAST(ts / 60 AS INTEGER), type, count(*) FROM alerts WHERE muted = 0 AND {where} "
                             "GROUP BY 1, 2", args).fetchall()
            c.executemany("UPDATE alert_minutes SET count = count - ? WHERE minute = ? AND type = ?",
                          [(n, m, t) for m, t, n in gone])
            c.execute("DELETE FROM alert_minutes WHERE count <= 0")
            per_type: dict[str, int] = {}
            for _, t, n in gone:
                per_type[t] = per_type.get(t, 0) + n
            c.executemany("UPDATE alert_types SET count = max(0, count - ?) WHERE type = ?",
                          [(n, t) for t, n in per_type.items()])
            srcs = c.execute(f"SELECT src_ip, count(*) FROM alerts WHERE muted = 0 AND src_ip IS NOT NULL AND {where} "
                             "GROUP BY src_ip", args).fetchall()
            c.executemany("UPDATE alert_sources SET count = count - ? WHERE src_ip = ?", [(n, ip) for ip, n in srcs])
            c.execute("DELETE FROM alert_sources WHERE count <= 0")
            c.execute(f"DELETE FROM alerts WHERE {where}", args)
            c.execute("DELETE FROM alert_batches WHERE last_id <= ?", (last_id,))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def stats(self) -> dict[str, int]:
        """Delivery counters for the stats event and the summary."""
        return {"stored": self.stored, **self.delivery.stats()}

    def close(self, deadline_s: float = CLOSE_S) -> None:
        """Replay what is spooled if the store takes it within the deadline; the rest stays
        in the spool file (said on stderr) and is replayed at the next start."""
        if not self.delivery.flush(deadline_s):
            print(f"wirewatch: {self.path}: store unavailable; {self.spool.pending:,} alerts stay in "
                  f"{self.spool.path} and are stored at the next start", file=self.log)
        self.conn.close()


def _stored_uids(conn: sqlite3.Connection, uids: list[str]) -> set[str]:
    seen: set[str] = set()
    for i in range(0, len(uids), 500):
        part = uids[i:i + 500]
        marks = ",".join("?" * len(part))
        seen.update(r[0] for r in conn.execute(f"SELECT uid FROM alerts WHERE uid IN ({marks})", part))
    return seen


def _epoch(ts: str) -> float:
    """EVE timestamp -> epoch seconds (fromisoformat is C code: no lazy import after a privilege drop)."""
    return dt.datetime.fromisoformat(ts).timestamp()
