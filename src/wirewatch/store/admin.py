"""State changes the dashboard makes (acknowledge, mute): small, explicit writes.

The sensor's SqliteSink is the writer of alerts; triage writes are rare, short
IMMEDIATE transactions on the same WAL database, rolled back on any error, so a busy
moment costs the dashboard one failed request and never leaves a transaction open.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .queries import QueryError
from .schema import cidr_range, migrate


class Triage:
    def __init__(self, path: str):
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
        migrate(self.conn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

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
        except ValueError:
            raise QueryError(f"cidr: not an address or CIDR: {cidr!r}") from None
        if until <= time.time():
            raise QueryError("until: must be in the future")
        if not alert_type:
            raise QueryError("type: required ('*' for every detector)")
        with self._transaction() as c:
            cur = c.execute("INSERT INTO mutes (type, cidr, dest_port, until, reason, created) VALUES (?,?,?,?,?,?)",
                            (alert_type, cidr.strip(), dest_port, until, reason[:200], time.time()))
            return int(cur.lastrowid or 0)

    def unmute(self, mute_id: int) -> int:
        with self._transaction() as c:
            return c.execute("UPDATE mutes SET until = ? WHERE id = ?", (time.time(), mute_id)).rowcount

    def close(self) -> None:
        self.conn.close()
