"""PostgreSQL sink: one of many sensors writing into one shared store.

One transaction per packet batch (executemany, pipelined by psycopg), the same roll-ups,
mutes and retention as the SQLite sink. The database may be down, restart or be
unreachable for a while: Delivery (store/spool.py) retries, then keeps the records in
the local spool and replays them in order once the database answers again.

No duplicates, even when a COMMIT reached the server but its answer did not reach us:
every record gets its uid before the first attempt, the uid is stored with the row
(unique index), and a retry or replay skips uids the database already has.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from typing import Any, TextIO

from ..config import sensor_name
from .postgres_schema import MigrationRunning, check_writable, connect, known, migrate, shown
from .rollups import gc_paused, prepare, sensor_of, upserts
from .schema import record_json
from .sensor_tables import SENSOR_UPSERT
from .sink_base import MuteRow, StoreSink
from .spool import Delivery, Entry, Spool, StoreAhead
from .tables import insert_alerts

UID_KEY = "_wirewatch_uid"  # carried by the sink's own copy of a record, never stored in it
INSERT = insert_alerts("%s")


def postgres_spool(cfg: Any) -> str:
    """This sensor's spool file: one per sensor name, so sensors sharing a machine never share one."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in sensor_name(cfg.general))
    return os.path.join(cfg.store.state_dir, f"spool-{name}.jsonl")


def transient_errors() -> tuple[type[BaseException], ...]:
    """What means "the database cannot take this now": a lost or refused connection, a
    server shutting down, a serialization failure. Anything else is a bug and is raised."""
    import psycopg
    return (psycopg.OperationalError, psycopg.errors.AdminShutdown, psycopg.errors.CannotConnectNow,
            psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected, psycopg.InterfaceError,
            MigrationRunning)


class PostgresSink(StoreSink):
    name = "postgresql"

    def __init__(self, url: str, spool_path: str, retention_days: float = 30.0, clock=time.time,
                 log: TextIO | None = None, spool_max_mb: float = 1024.0):
        self.url = url
        self.retention_days = retention_days
        self.clock = clock
        self.log = log or sys.stderr
        self.conn: Any = None
        try:
            self._connect()  # a database that is unreachable at start is a one-line error, like a bad path
        except StoreAhead as exc:  # before replaying a spool into it
            if self.conn is not None:
                self.conn.close()
            raise exc.refusal(shown(url), "this one does not write into it") from None
        os.makedirs(os.path.dirname(os.path.abspath(spool_path)), exist_ok=True)
        self.spool = Spool(spool_path, spool_max_mb * 1024 * 1024)
        self.delivery = Delivery(self._store, self.spool, transient_errors(), log=self.log, what=shown(url))
        self._uid_prefix = secrets.token_hex(8) + "-"
        self._uid_seq = 0
        self._init_cadence()
        if self.spool.pending:  # left by an earlier run that could not reach the database
            self.delivery.flush()

    def _connect(self) -> Any:
        if self.conn is None or self.conn.closed:
            self.conn = connect(self.url)
            known(migrate(self.conn))
        return self.conn

    def _reconnect_or_raise(self) -> Any:
        """The connection, reopened if it was lost (raises a transient error while it cannot be)."""
        import psycopg
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return self.conn
        try:
            if self.conn is not None:
                self.conn.close()
        finally:
            self.conn = None
        try:
            return self._connect()
        except OSError as exc:
            raise psycopg.OperationalError(str(exc)) from None

    def paths(self) -> list[str]:
        """Files the sensor hands to its unprivileged user before dropping root (the spool's
        offset file too: it is rewritten in place, so the directory may stay root's)."""
        return self.spool.create()

    def _stamp(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in records:
            self._uid_seq += 1
            out.append(dict(r) | {UID_KEY: f"{self._uid_prefix}{self._uid_seq:x}"})
        return out

    def _load_mutes(self, now: float) -> list[MuteRow] | None:
        """While the database is unreachable the last known mutes stay in force."""
        try:
            conn = self._reconnect_or_raise()
            with conn.transaction():
                return conn.execute("SELECT id, type, cidr, dest_port, until FROM mutes WHERE until > %s",
                                    (now,)).fetchall()
        except StoreAhead:  # a reconnect found a newer schema: the next write stops
            return None
        except transient_errors():
            return None

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        self.delivery.deliver(self._stamp(records))

    def _store(self, entries: list[Entry]) -> None:
        """Store entries (alerts and stats) in one transaction, skipping uids already stored."""
        conn = self._reconnect_or_raise()
        pending = [(e.record.get(UID_KEY) or e.uid, {k: v for k, v in e.record.items() if k != UID_KEY})
                   for e in entries]
        with gc_paused(), conn.transaction():
            check_writable(conn)
            uids = [u for u, _ in pending if u]
            seen = {r[0] for r in conn.execute("SELECT uid FROM alerts WHERE uid = ANY(%s) UNION "
                                               "SELECT uid FROM stats WHERE uid = ANY(%s)", (uids, uids))}
            fresh = [(u, r) for u, r in pending if u not in seen]
            alerts = [(u, r) for u, r in fresh if r.get("event_type") != "stats"]
            stats = [(u, r) for u, r in fresh if r.get("event_type") == "stats"]
            cur = conn.cursor()
            if alerts:
                rows, rollup = prepare([r for _, r in alerts], [u for u, _ in alerts])
                cur.executemany(INSERT, rows)
                for sql, args in upserts(rollup, "greatest", "least"):
                    if args:
                        cur.executemany(sql.replace("?", "%s"), args)
                if rollup.owners:  # ids by uid: other sensors insert between our rows
                    cur.execute("INSERT INTO alert_owners (term, id) SELECT t.term, a.id FROM "
                                "unnest(%s::text[], %s::text[]) AS t(uid, term) JOIN alerts a ON a.uid = t.uid "
                                "ON CONFLICT DO NOTHING", ([alerts[i][0] for i, _ in rollup.owners],
                                                           [term for _, term in rollup.owners]))
            if stats:
                now = self.clock()
                cur.executemany("INSERT INTO stats (ts, sensor, record, uid) VALUES (%s,%s,%s,%s)",
                                [(now, sensor_of(r), record_json(r), u) for u, r in stats])
                for _, r in stats:  # in order: each sensor's last two events give its health
                    cur.execute(SENSOR_UPSERT.replace("?", "%s"), (sensor_of(r), now, now, record_json(r)))

    def enforce_retention(self) -> None:
        """Delete alerts inserted more than retention_days ago (insertion time, as SQLite),
        keeping the roll-ups true; stats and per-sensor roll-ups age out by time. A
        database that is unreachable skips it until next time."""
        self.last_retention = self.clock()
        if self.delivery.halted:
            return
        cutoff = self.clock() - self.retention_days * 86400
        try:
            conn = self._reconnect_or_raise()
            with conn.transaction():
                check_writable(conn)
                gone = "SELECT * FROM alerts WHERE inserted < %s AND muted = 0"
                conn.execute(f"UPDATE alert_types t SET count = greatest(0, t.count - g.n) FROM (SELECT type, count(*) AS n "
                             f"FROM ({gone}) a GROUP BY type) g WHERE t.type = g.type", (cutoff,))
                conn.execute(f"UPDATE alert_minutes t SET count = t.count - g.n FROM (SELECT floor(ts / 60)::bigint AS "
                             f"minute, type, count(*) AS n FROM ({gone}) a GROUP BY 1, 2) g WHERE t.minute = g.minute "
                             "AND t.type = g.type", (cutoff,))
                conn.execute(f"UPDATE sensor_types t SET count = greatest(0, t.count - g.n) FROM (SELECT sensor, type, "
                             f"count(*) AS n FROM ({gone}) a GROUP BY 1, 2) g WHERE t.sensor = g.sensor AND t.type = g.type",
                             (cutoff,))
                conn.execute(f"UPDATE alert_sources t SET count = t.count - g.n FROM (SELECT attacker, count(*) AS n "
                             f"FROM ({gone}) a WHERE attacker IS NOT NULL GROUP BY 1) g WHERE t.src_ip = g.attacker",
                             (cutoff,))
                conn.execute("WITH gone AS (DELETE FROM alerts WHERE inserted < %s RETURNING id) "
                             "DELETE FROM alert_owners WHERE id IN (SELECT id FROM gone)", (cutoff,))
                conn.execute("DELETE FROM alert_minutes WHERE count <= 0")
                conn.execute("DELETE FROM alert_sources WHERE count <= 0")
                conn.execute("DELETE FROM stats WHERE ts < %s", (cutoff,))
                conn.execute("DELETE FROM sensor_minutes WHERE minute < %s", (int(cutoff // 60),))
                conn.execute("DELETE FROM source_activity WHERE last_ts < %s", (cutoff,))
                conn.execute("DELETE FROM sensor_sources WHERE last_ts < %s", (cutoff,))
        except StoreAhead as exc:
            self.delivery.halted = str(exc)
        except transient_errors():
            return

    def close(self) -> None:
        left = not self.delivery.flush()
        if left and not self.delivery.halted:  # (halted: the command says so)
            print(f"wirewatch: {shown(self.url)}: {self.spool.pending:,} records stay in {self.spool.path} "
                  "until the database answers (replayed at the next start)", file=self.log)
        if self.conn is not None:
            self.conn.close()
