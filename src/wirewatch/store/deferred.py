"""SQLite: the per-source roll-ups caught up in bulk when an alert storm is being written.

`alert_sources`, `sensor_sources` and `source_activity` (store/rollups.py) take a row per new
attacker in each of three tables, seven b-tree inserts with their indexes: in a storm of
forged sources every alert is a new attacker, and these upserts were a quarter of the
writer's time (6.3 of 28.8 µs an alert at 300,000). So the writer keeps them current
inline only while nothing is pending and its batch is small (INLINE_MAX: ordinary
traffic); a bigger batch leaves its alerts pending, and the pending alerts (ids above
`source_rollup_done.last_id`) are added in bulk, in id order and a chunk per transaction
(one GROUP BY of the chunk into a temporary table, then one sorted upsert per roll-up: 6.2 µs
an alert of a 300,000-alert storm of new sources, about what the inline upserts cost), by

- the dashboard: before it serves (create_app) and with its full-text index, every
  INDEX_EVERY_S (store/search.py's Indexer), so its top sources and incidents lag a storm
  by a few seconds at most;
- the writer itself, once the storm is over: each later small batch or stats event
  first catches up at most WRITER_CHUNK pending alerts (and close() what it can in time).

Whoever does it holds the write lock, so the pointer and the roll-ups move together and
nothing is counted twice. Retention's deletes take only alerts at or below the pointer out
of these roll-ups (a trigger, schema migration 12). PostgreSQL's writers stay inline (several
sensors write at once, so ids do not commit in order).
"""

from __future__ import annotations

import sqlite3
import time

from .transaction import known_immediate

INLINE_MAX = 1024  # a batch of at most this many alerts updates the source roll-ups itself
WRITER_CHUNK = 20000  # pending alerts the writer catches up per transaction, once the storm is over
CHUNK = 10000  # pending alerts per catch-up transaction elsewhere (about 0.06 s: the writer waits at most that)

# 12: the pointer; existing stores are complete up to their newest alert. The retention
# trigger splits in two: per-sensor minutes and types always, sources only when rolled up.
SQLITE_DEFERRED_SOURCES = """
CREATE TABLE source_rollup_done (last_id INTEGER NOT NULL);
INSERT INTO source_rollup_done SELECT coalesce(max(id), 0) FROM alerts;
DROP TRIGGER alerts_sensor_retention;
CREATE TRIGGER alerts_sensor_retention AFTER DELETE ON alerts WHEN OLD.muted = 0 BEGIN
    UPDATE sensor_minutes SET count = count - 1
        WHERE sensor = OLD.sensor AND minute = CAST(OLD.ts / 60 AS INTEGER) AND type = OLD.type;
    UPDATE sensor_types SET count = count - 1 WHERE sensor = OLD.sensor AND type = OLD.type;
END;
CREATE TRIGGER alerts_source_retention AFTER DELETE ON alerts
        WHEN OLD.muted = 0 AND OLD.id <= (SELECT last_id FROM source_rollup_done) BEGIN
    UPDATE source_activity SET count = count - 1 WHERE src_ip = OLD.attacker AND sensor = OLD.sensor AND type = OLD.type;
    UPDATE sensor_sources SET count = count - 1 WHERE sensor = OLD.sensor AND src_ip = OLD.attacker;
    UPDATE alert_sources SET count = count - 1 WHERE src_ip = OLD.attacker;
END;
"""


def done_through(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT last_id FROM source_rollup_done").fetchone()[0])


def set_done(conn: sqlite3.Connection, last_id: int) -> None:
    conn.execute("UPDATE source_rollup_done SET last_id = ?", (last_id,))


# A chunk's alerts grouped once into a temporary table (sorted by key, so the upserts below
# walk each roll-up's b-tree in order), then added to each roll-up with one statement.
_GROUP = ("INSERT INTO temp.pending_activity SELECT attacker, sensor, type, count(*), min(ts), max(ts) FROM alerts "
          "WHERE id > ? AND id <= ? AND muted = 0 AND attacker IS NOT NULL AND attacker <> '' GROUP BY 1, 2, 3")
_ADD = (
    "INSERT INTO source_activity (src_ip, sensor, type, count, first_ts, last_ts) "
    "SELECT src_ip, sensor, type, n, first_ts, last_ts FROM temp.pending_activity WHERE true ORDER BY 1, 2, 3 "
    "ON CONFLICT (src_ip, sensor, type) DO UPDATE SET count = source_activity.count + excluded.count, "
    "first_ts = min(source_activity.first_ts, excluded.first_ts), last_ts = max(source_activity.last_ts, excluded.last_ts)",
    "INSERT INTO sensor_sources (sensor, src_ip, count, last_ts) "
    "SELECT sensor, src_ip, sum(n), max(last_ts) FROM temp.pending_activity WHERE true GROUP BY 1, 2 ORDER BY 1, 2 "
    "ON CONFLICT (sensor, src_ip) DO UPDATE SET count = sensor_sources.count + excluded.count, "
    "last_ts = max(sensor_sources.last_ts, excluded.last_ts)",
    "INSERT INTO alert_sources (src_ip, count, last_ts) "
    "SELECT src_ip, sum(n), max(last_ts) FROM temp.pending_activity WHERE true GROUP BY 1 ORDER BY 1 "
    "ON CONFLICT (src_ip) DO UPDATE SET count = alert_sources.count + excluded.count, "
    "last_ts = max(alert_sources.last_ts, excluded.last_ts)",
)


def add_pending(conn: sqlite3.Connection, limit: int) -> int:
    """Inside the caller's write transaction: add at most `limit` pending alerts (oldest
    first) to the source roll-ups and move the pointer past them; returns how many."""
    last = done_through(conn)
    n, high = conn.execute("SELECT count(*), max(id) FROM (SELECT id FROM alerts WHERE id > ? ORDER BY id LIMIT ?)",
                           (last, limit)).fetchone()
    if not n:
        return 0
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS pending_activity (src_ip TEXT, sensor TEXT, type TEXT, n INTEGER, "
                 "first_ts REAL, last_ts REAL)")
    conn.execute("DELETE FROM temp.pending_activity")
    conn.execute(_GROUP, (last, high))
    for sql in _ADD:
        conn.execute(sql)
    conn.execute("DELETE FROM temp.pending_activity")
    set_done(conn, high)
    return int(n)


def catch_up_sources(conn: sqlite3.Connection, chunk: int = CHUNK, limit: int | None = None,
                     pause_s: float = 0.0) -> int:
    """Add every pending alert (at most `limit`) to the source roll-ups, a chunk per short
    IMMEDIATE transaction, `pause_s` between them (the sensor's writer gets in); returns
    how many. Raises sqlite3.Error if the store is busy."""
    done = 0
    while limit is None or done < limit:
        if done:
            time.sleep(pause_s)
        with known_immediate(conn):
            n = add_pending(conn, chunk if limit is None else min(chunk, limit - done))
        done += n
        if n == 0:
            break
    return done


def status(conn: sqlite3.Connection) -> dict[str, int | bool]:
    """How far the source roll-ups got: they count the alerts with id <= rolled_up_through."""
    last = done_through(conn)
    latest = conn.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]
    return {"rolled_up_through": last, "pending": max(0, latest - last), "complete": last >= latest}
