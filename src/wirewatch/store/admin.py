"""State changes the dashboard makes (acknowledge, mute): small, explicit writes.

The sensor's SqliteSink is the writer of alerts; triage writes are rare, short
transactions on the same WAL database.
"""

from __future__ import annotations

import sqlite3
import time

from .queries import QueryError
from .schema import cidr_range, migrate


class Triage:
    def __init__(self, path: str):
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
        migrate(self.conn)

    def acknowledge(self, ids: list[int], value: bool = True) -> int:
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        return self.conn.execute(f"UPDATE alerts SET acknowledged = ? WHERE id IN ({marks})",
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
        cur = self.conn.execute("INSERT INTO mutes (type, cidr, dest_port, until, reason, created) VALUES (?,?,?,?,?,?)",
                                (alert_type, cidr.strip(), dest_port, until, reason[:200], time.time()))
        return int(cur.lastrowid)

    def unmute(self, mute_id: int) -> int:
        return self.conn.execute("UPDATE mutes SET until = ? WHERE id = ?", (time.time(), mute_id)).rowcount

    def close(self) -> None:
        self.conn.close()
