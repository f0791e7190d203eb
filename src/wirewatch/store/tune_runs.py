"""Saved `wirewatch tune` runs, for the dashboard's tune page: the table (a migration of each
store), writing one run, and reading the runs back. A run is the JSON document `tune --format
json` prints, kept whole, with when it ran, the sensor name and the capture names beside it."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any

SQLITE_TUNE_RUNS = """
CREATE TABLE tune_runs (id INTEGER PRIMARY KEY, created REAL NOT NULL, sensor TEXT NOT NULL DEFAULT '',
                        captures TEXT NOT NULL, packets INTEGER NOT NULL, document TEXT NOT NULL);
"""

POSTGRES_TUNE_RUNS = """
CREATE TABLE tune_runs (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created DOUBLE PRECISION NOT NULL,
                        sensor TEXT NOT NULL DEFAULT '', captures TEXT NOT NULL, packets BIGINT NOT NULL,
                        document TEXT NOT NULL);
"""

INSERT = "INSERT INTO tune_runs (created, sensor, captures, packets, document) VALUES (?,?,?,?,?) RETURNING id"
LIST = "SELECT id, created, sensor, captures, packets FROM tune_runs ORDER BY id DESC LIMIT ?"
ONE = "SELECT id, created, sensor, captures, packets, document FROM tune_runs WHERE id = ?"
OPEN_TIMEOUT_S = 5.0


def capture_names(doc: dict[str, Any]) -> list[str]:
    """The file names of the run's captures (and its baseline's), for the list of runs."""
    paths = list(doc.get("captures", [])) + list(doc.get("baseline", {}).get("captures", []))
    return [os.path.basename(p) for p in paths]


def save_run(url: str, doc: dict[str, Any], sensor: str = "", created: float | None = None) -> int:
    """Store one tune document in the alert store at `url` (SQLite file or PostgreSQL URL),
    migrating it first; returns the run's id. OSError naming the store if it cannot be written."""
    from .postgres_schema import is_postgres
    from .schema import record_json  # (schema imports this module for its migration)
    row = (time.time() if created is None else created, sensor, json.dumps(capture_names(doc)),
           int(doc.get("packets", 0)), record_json(doc))
    if is_postgres(url):
        return _save_postgres(url, row)
    return _save_sqlite(url, row)


REFUSED = "tune does not save its run into it"


def check_store(url: str) -> None:
    """Before a tune pass with a store: spool.StoreRefused (one line naming the store and both
    versions) when a newer wirewatch migrated it, rather than after minutes of analysis. The
    store is not created or migrated here (save_run does that)."""
    from .queries import refuse_newer
    refuse_newer(url, REFUSED)


def _save_sqlite(path: str, row: tuple[Any, ...]) -> int:
    from .schema import migrate_known
    from .spool import StoreAhead
    from .transaction import known_immediate
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=OPEN_TIMEOUT_S)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # as the sensor's writer: the dashboard reads while it writes
            migrate_known(conn, path, REFUSED)
            with known_immediate(conn):  # a newer wirewatch may have migrated it during the pass
                return int(conn.execute(INSERT, row).fetchone()[0])
        except StoreAhead as exc:
            raise exc.refusal(path, REFUSED) from None
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OSError(f"{path}: cannot save the tune run: {exc}") from None


def _save_postgres(url: str, row: tuple[Any, ...]) -> int:
    from .postgres_schema import MIGRATION_LOCK, connect, known, migrate_known, shown
    from .spool import StoreAhead
    conn = connect(url, autocommit=True)  # OSError naming the database if it is unreachable
    try:
        import psycopg
        try:
            migrate_known(conn, url, REFUSED)
            with conn.transaction():  # its version under a shared hold of the migration lock, as the sinks
                conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (MIGRATION_LOCK,))
                known(conn.execute("SELECT version FROM schema_version").fetchone()[0])
                return int(conn.execute(INSERT.replace("?", "%s"), row).fetchone()[0])
        except StoreAhead as exc:
            raise exc.refusal(shown(url), REFUSED) from None
        except psycopg.Error as exc:
            raise OSError(f"{shown(url)}: cannot save the tune run: {str(exc).strip().splitlines()[0]}") from None
    finally:
        conn.close()


def run_summary(row: dict[str, Any]) -> dict[str, Any]:
    """A listed run: its id, time, sensor, capture names and packets."""
    return {"id": int(row["id"]), "created": float(row["created"]), "sensor": row["sensor"],
            "captures": json.loads(row["captures"]), "packets": int(row["packets"])}
