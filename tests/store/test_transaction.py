"""store/transaction.immediate: what it commits stays, an error rolls everything back and leaves
the connection out of any transaction, and a store whose write lock is held fails at BEGIN."""

from __future__ import annotations

import sqlite3

import pytest

from wirewatch.store.transaction import immediate


def connect(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return conn


def rows(conn: sqlite3.Connection) -> list[int]:
    return [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")]


def test_a_block_that_ends_is_committed(tmp_path):
    conn = connect(tmp_path / "s.db")
    with immediate(conn) as c:
        c.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction
    assert rows(connect(tmp_path / "s.db")) == [1]  # another connection sees it


def test_an_error_rolls_back_and_the_connection_writes_again(tmp_path):
    conn = connect(tmp_path / "s.db")
    with pytest.raises(ValueError, match="half-way"), immediate(conn) as c:
        c.execute("INSERT INTO t VALUES (1)")
        raise ValueError("half-way")
    assert not conn.in_transaction and rows(conn) == []
    with immediate(conn) as c:  # not "cannot start a transaction within a transaction"
        c.execute("INSERT INTO t VALUES (2)")
    assert rows(conn) == [2]


def test_a_held_write_lock_fails_at_begin_and_leaves_no_transaction(tmp_path):
    holder, conn = connect(tmp_path / "s.db"), connect(tmp_path / "s.db")
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"), immediate(conn) as c:
        c.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction
    holder.execute("ROLLBACK")
    with immediate(conn) as c:
        c.execute("INSERT INTO t VALUES (3)")
    assert rows(conn) == [3]
