"""One SQLite write transaction: BEGIN IMMEDIATE (the write lock taken at once, so a busy store
fails here and not halfway), COMMIT, and ROLLBACK on any error so that the connection is never
left inside a transaction (issue 9: one "database is locked" used to disable the store)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


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
