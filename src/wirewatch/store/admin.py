"""State changes the dashboard makes (acknowledge, mute): small, explicit writes.

The sensors' sinks are the writers of alerts; triage writes are rare, short transactions
on the same database, rolled back on any error, so a busy moment costs the dashboard one
failed request and never leaves a transaction open. SQLite: IMMEDIATE transactions on the
WAL database. PostgreSQL (a fleet's shared store): psycopg transactions.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..addr import HostBits, written_prefix
from .postgres_schema import MIGRATION_LOCK
from .queries import QueryError
from .schema import cidr_range, migrate_known
from .spool import StoreAhead
from .transaction import known_immediate


class Triage:
    """Triage over SQLite; PostgresTriage says how PostgreSQL differs."""

    def __init__(self, path: str):
        self.where = path
        self.conn: Any = sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
        try:
            migrate_known(self.conn, path, "the dashboard does not open it")
        except OSError:
            self.conn.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A transaction; what it yields runs SQL written with `?` placeholders."""
        try:
            with known_immediate(self.conn) as c:  # a newer wirewatch may migrate it while the dashboard runs
                yield c
        except StoreAhead as exc:
            raise exc.refusal(self.where, "the dashboard does not write into it") from None

    def acknowledge(self, ids: list[int], value: bool = True) -> int:
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self._transaction() as c:
            return c.execute(f"UPDATE alerts SET acknowledged = ? WHERE id IN ({marks})",
                             (1 if value else 0, *ids)).rowcount

    def mute(self, alert_type: str, cidr: str, until: float, dest_port: int | None = None, reason: str = "") -> int:
        try:
            cidr_range(cidr)
            written_prefix(cidr.strip())  # 10.0.0.1/8 would mute 10.0.0.0/8 and be listed as 10.0.0.1/8
        except HostBits as exc:
            raise QueryError(f"cidr: {exc}") from None
        except ValueError:
            raise QueryError(f"cidr: not an address or CIDR: {cidr!r}") from None
        if until <= time.time():
            raise QueryError("until: must be in the future")
        if not alert_type:
            raise QueryError("type: required ('*' for every detector)")
        with self._transaction() as c:
            cur = c.execute("INSERT INTO mutes (type, cidr, dest_port, until, reason, created) VALUES (?,?,?,?,?,?) "
                            "RETURNING id", (alert_type, cidr.strip(), dest_port, until, reason[:200], time.time()))
            return int(cur.fetchone()[0])

    def unmute(self, mute_id: int) -> int:
        with self._transaction() as c:
            return c.execute("UPDATE mutes SET until = ? WHERE id = ?", (time.time(), mute_id)).rowcount

    def close(self) -> None:
        self.conn.close()


class _QmarkConnection:
    """psycopg with the `?` placeholders the shared SQL is written in."""

    def __init__(self, conn: Any):
        self.conn = conn

    def execute(self, sql: str, args: tuple = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), args)


class PostgresTriage(Triage):
    def __init__(self, url: str):
        from .postgres_schema import connect, shown
        from .postgres_schema import migrate_known as pg_migrate_known
        self.where = shown(url)
        self.conn = connect(url, autocommit=True)
        try:
            pg_migrate_known(self.conn, url, "the dashboard does not open it")
        except OSError:
            self.conn.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        from .postgres_schema import known
        try:
            with self.conn.transaction():
                # a newer wirewatch may migrate it while the dashboard runs: its version under a shared
                # hold of the migration lock (waiting for one in progress: a triage write is rare)
                self.conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (MIGRATION_LOCK,))
                known(self.conn.execute("SELECT version FROM schema_version").fetchone()[0])
                yield _QmarkConnection(self.conn)
        except StoreAhead as exc:
            raise exc.refusal(self.where, "the dashboard does not write into it") from None


def open_triage(url: str) -> Triage:
    from .postgres_schema import is_postgres
    return PostgresTriage(url) if is_postgres(url) else Triage(url)
