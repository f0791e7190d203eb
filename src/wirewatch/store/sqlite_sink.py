"""SQLite sink: the single writer of the alert store.

One transaction per packet batch (an alert storm costs one commit per batch), WAL mode
so the dashboard reads while the sensor writes, a spool when the store cannot take
writes, retention by insertion age and size enforced while running, and mutes read back every few seconds so the dashboard can silence a
detector for a source while the sensor runs.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from .deferred import INLINE_MAX, WRITER_CHUNK, add_pending, done_through, set_done
from .rollups import gc_paused, prepare, upserts
from .schema import MIGRATIONS, migrate, record_json, spool_path, store_files
from .sink_base import MUTE_REFRESH_S, RETENTION_EVERY, RETENTION_PERIOD_S, MuteRow, StoreSink
from .spool import Delivery, Entry, Spool, StoreAhead
from .tables import insert_alerts
from .transaction import known_immediate

__all__ = ["MUTE_REFRESH_S", "RETENTION_EVERY", "RETENTION_PERIOD_S", "SqliteSink"]

BUSY_TIMEOUT_MS = 250  # per attempt; Delivery retries with backoff, then spools
OPEN_TIMEOUT_S = 5.0  # opening and migrating may wait longer (once, at start)
CLOSE_S = 1.5  # at exit, replay the spool for at most this long (a stop must end within 5 s)
CLOSE_SOURCES_S = 1.0  # then add a storm's pending source roll-ups for at most this long
INSERT = insert_alerts("?")


class SqliteSink(StoreSink):
    """The one writer of alerts and stats into the store.

    Each write is one IMMEDIATE transaction (the write lock is taken up front, waiting up
    to BUSY_TIMEOUT_MS for the dashboard's short triage writes), rolled back on any error.
    Failed writes are retried with backoff; when the store stays unavailable the records
    go to the spool next to the database and are replayed in order once it takes writes
    again (store/spool.py), skipping ids already stored.
    """

    name = "sqlite"

    def __init__(self, path: str, retention_days: float = 30.0, max_mb: float = 1024.0, clock=time.time,
                 log: TextIO | None = None, spool_max_mb: float = 1024.0):
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
            version = migrate(self.conn)
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.conn.execute("PRAGMA cache_size = -65536")  # 64 MB: nine indexes stay in memory in a storm
        except sqlite3.Error as exc:
            raise OSError(f"{path}: cannot open alert store: {exc}") from None
        if version > len(MIGRATIONS):  # before replaying a spool into it
            self.conn.close()
            raise StoreAhead(version, len(MIGRATIONS)).refusal(path, "this one does not write into it")
        self._init_cadence()
        self.retention_errors = 0
        self.stored = 0  # alert rows this process inserted
        self.spool = Spool(spool_path(path), spool_max_mb * 1024 * 1024)
        self.delivery = Delivery(self._store, self.spool, (sqlite3.Error,), log=self.log, what=path)
        if self.spool.pending:  # left by an earlier run that could not reach the store
            self.delivery.flush()

    def paths(self) -> list[str]:
        """Files the sensor hands to its unprivileged user before dropping root (the spool
        files are created now so that they can be handed over too)."""
        self.spool.create()
        return store_files(self.path)

    def _load_mutes(self, now: float) -> list[MuteRow] | None:
        try:
            return self.conn.execute("SELECT id, type, cidr, dest_port, until FROM mutes WHERE until > ?",
                                     (now,)).fetchall()
        except sqlite3.Error:
            return None  # the store is busy: keep the mutes we have, try again later

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        with gc_paused():  # (the batch's Entry objects too: rollups.gc_paused)
            self.delivery.deliver(records)

    def _store(self, entries: list[Entry]) -> None:
        """Store entries (alerts and stats events) in one transaction, or roll back and raise."""
        c = self.conn
        with gc_paused():
            self._transaction(c, entries)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, in a store still at the schema this writer knows: a newer
        wirewatch may migrate it while this one runs (StoreAhead, and the transaction is rolled
        back). One read of a one-row table under the write lock, so no migration comes between."""
        with known_immediate(self.conn) as c:
            yield c

    def _transaction(self, c: sqlite3.Connection, entries: list[Entry]) -> None:
        with self._write():
            uids = [e.uid for e in entries if e.uid is not None]
            if uids:  # a replay: skip what an interrupted earlier replay already stored
                seen = _stored_uids(c, uids)
                entries = [e for e in entries if e.uid not in seen]
            alerts = [e for e in entries if e.record.get("event_type") != "stats"]
            if alerts:
                self._insert_alerts(alerts)
            else:  # a stats event: a storm's pending source roll-ups, a chunk at a time (store/deferred.py)
                add_pending(c, WRITER_CHUNK)
            now = self.clock()
            c.executemany("INSERT INTO stats (ts, record) VALUES (?, ?)",
                          [(now, record_json(e.record)) for e in entries if e.record.get("event_type") == "stats"])
        self.stored += len(alerts)

    def _insert_alerts(self, entries: list[Entry]) -> None:
        """The rows and, in the same pass, what they add to every roll-up (rollups.prepare):
        one executemany for the rows, one UPSERT per roll-up key. The per-source roll-ups
        only for a small batch with nothing pending; a storm's are added in bulk later
        (store/deferred.py), and a small batch first catches up a chunk of them."""
        c = self.conn
        small = len(entries) <= INLINE_MAX
        prev = c.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]
        done = done_through(c)  # never above prev: retention pulls it down (_delete_through)
        if small and done < prev:
            add_pending(c, WRITER_CHUNK)
            done = done_through(c)
        inline = small and done == prev
        rows, rollup = prepare([e.record for e in entries], [e.uid for e in entries], sources=inline)
        c.executemany(INSERT, rows)
        last = c.execute("SELECT max(id) FROM alerts").fetchone()[0]
        c.execute("INSERT OR REPLACE INTO alert_batches VALUES (?, ?)", (last, self.clock()))
        for sql, args in upserts(rollup, "max", "min"):
            if args:
                c.executemany(sql, args)
        if inline:
            set_done(c, last)
        if rollup.owners:  # one writer, one transaction: the batch's ids are the last len(rows)
            first = last - len(rows) + 1
            c.executemany("INSERT OR IGNORE INTO alert_owners (term, id) VALUES (?, ?)",
                          [(term, first + i) for i, term in rollup.owners])

    def enforce_retention(self) -> None:
        """Delete alerts stored more than retention_days ago (insertion time, not packet time:
        an analysed capture from 2023 is kept like live alerts), then the oldest stored until
        the file fits max size. A busy store skips it until next time."""
        self.last_retention = self.clock()
        if self.delivery.halted:
            return
        try:
            self._retention()
        except StoreAhead as exc:
            self.delivery.halted = str(exc)
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
        """Delete alerts with id <= last_id and keep the roll-ups (per type, sensor, attacker and minute) true."""
        where, args = "id <= ?", (last_id,)
        with self._write() as c:
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
            c.execute(f"DELETE FROM alerts WHERE {where}", args)  # triggers: the per-sensor roll-ups
            c.execute("DELETE FROM alert_owners WHERE id <= ?", (last_id,))
            c.execute("DELETE FROM sensor_types WHERE count <= 0")
            c.execute("DELETE FROM alert_sources WHERE count <= 0")
            c.execute("DELETE FROM alert_batches WHERE last_id <= ?", (last_id,))
            # what is left is indexed and rolled up through at most its newest id: when every
            # alert above it went, new ids start below the pointers and must not count as done
            for table in ("alerts_fts_done", "source_rollup_done"):
                c.execute(f"UPDATE {table} SET last_id = (SELECT coalesce(max(id), 0) FROM alerts) "
                          "WHERE last_id > (SELECT coalesce(max(id), 0) FROM alerts)")

    def stats(self) -> dict[str, int]:
        """Delivery counters for the stats event and the summary."""
        return {"stored": self.stored, **self.delivery.stats()}

    def close(self, deadline_s: float = CLOSE_S) -> None:
        """Replay what is spooled if the store takes it within the deadline; the rest stays
        in the spool file (said on stderr) and is replayed at the next start."""
        if not self.delivery.flush(deadline_s) and not self.delivery.halted:  # (halted: the command says so)
            print(f"wirewatch: {self.path}: store unavailable; {self.spool.pending:,} alerts stay in "
                  f"{self.spool.path} and are stored at the next start", file=self.log)
        if not self.delivery.halted:
            self._catch_up_sources(CLOSE_SOURCES_S)
        self.conn.close()

    def _catch_up_sources(self, seconds: float) -> None:
        """A storm's pending source roll-ups, a chunk per transaction for at most `seconds`;
        what is left the dashboard (or the next run) adds."""
        end = time.monotonic() + seconds
        try:
            with gc_paused():
                while time.monotonic() < end:
                    with self._write() as c:
                        if not add_pending(c, WRITER_CHUNK):
                            break
        except StoreAhead as exc:
            self.delivery.halted = str(exc)
        except sqlite3.Error:
            pass  # busy


def _stored_uids(conn: sqlite3.Connection, uids: list[str]) -> set[str]:
    seen: set[str] = set()
    for i in range(0, len(uids), 500):
        part = uids[i:i + 500]
        marks = ",".join("?" * len(part))
        seen.update(r[0] for r in conn.execute(f"SELECT uid FROM alerts WHERE uid IN ({marks})", part))
    return seen
