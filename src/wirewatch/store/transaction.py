"""One SQLite write transaction: BEGIN IMMEDIATE (the write lock taken at once, so a busy store
fails here and not halfway), COMMIT, and ROLLBACK on any error so that the connection is never
left inside a transaction (issue 9: one "database is locked" used to disable the store)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def known_immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """immediate(), in a store still at a schema this wirewatch knows: a newer wirewatch may
    migrate it while this one runs (spool.StoreAhead, and the transaction is rolled back). One
    read of a one-row table under the write lock, so no migration comes between. Every writer
    of a SQLite store but the migration itself: the sink, the dashboard's roll-ups, full-text
    index and triage, tune's saved runs."""
    from .schema import MIGRATIONS  # (schema imports the modules that write through this)
    from .spool import StoreAhead
    with immediate(conn) as c:
        version = c.execute("SELECT version FROM schema_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreAhead(version, len(MIGRATIONS))
        yield c


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
