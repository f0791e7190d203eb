"""The SQLite store's schema and its migrations (a schema_version table; never by hand)."""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import socket
import sqlite3
from typing import Any

import orjson

from .deferred import SQLITE_DEFERRED_SOURCES
from .search import SQLITE_FTS, SQLITE_FTS_ADDRESSES, SQLITE_FTS_RECORD_WORDS, SQLITE_FTS_TEXT_WORDS
from .sensor_tables import ATTACKER_REBUILD, SQLITE_SENSOR_SOURCES, SQLITE_SENSORS
from .spool import StoreAhead
from .tables import (
    ACKNOWLEDGED_INDEX,
    ADDED_LATER,
    SEVERITY_INDEX,
    SQLITE_FLOW_IDS,
    SQLITE_INDEXES,
    WRITTEN,
    create_alerts,
    owner_tables,
)
from .tune_runs import SQLITE_TUNE_RUNS

_COPIED = ", ".join(c for c in WRITTEN if c not in ("sensor", "attacker", *ADDED_LATER)) + ", acknowledged"

# 9: the alerts table rebuilt from the one column list (store/tables.py): `sensor` a stored
# column the writer fills (the generated one parsed every record's JSON on insert, for its
# index), `attacker`; a port index per side; country / AS terms; sources are attackers.
SQLITE_ONE_COLUMN_LIST = create_alerts("sqlite", "alerts_v7", without=ADDED_LATER) + f"""
INSERT INTO alerts_v7 (id, {_COPIED}, sensor, attacker)
    SELECT id, {_COPIED}, sensor, coalesce(json_extract(record, '$.alert.source.ip'), src_ip) FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_v7 RENAME TO alerts;
{SQLITE_INDEXES}
CREATE UNIQUE INDEX alerts_uid ON alerts(uid) WHERE uid IS NOT NULL;
CREATE TRIGGER alerts_fts_delete AFTER DELETE ON alerts WHEN OLD.id <= (SELECT last_id FROM alerts_fts_done) BEGIN
    INSERT INTO alerts_fts(alerts_fts, rowid, message, record) VALUES ('delete', OLD.id, OLD.message, OLD.record);
END;
CREATE TRIGGER alerts_sensor_retention AFTER DELETE ON alerts WHEN OLD.muted = 0 BEGIN
    UPDATE sensor_minutes SET count = count - 1
        WHERE sensor = OLD.sensor AND minute = CAST(OLD.ts / 60 AS INTEGER) AND type = OLD.type;
    UPDATE sensor_types SET count = count - 1 WHERE sensor = OLD.sensor AND type = OLD.type;
    UPDATE source_activity SET count = count - 1 WHERE src_ip = OLD.attacker AND sensor = OLD.sensor AND type = OLD.type;
    UPDATE sensor_sources SET count = count - 1 WHERE sensor = OLD.sensor AND src_ip = OLD.attacker;
    UPDATE alert_sources SET count = count - 1 WHERE src_ip = OLD.attacker;
END;
{owner_tables("sqlite")}
{ATTACKER_REBUILD}
CREATE TEMP TABLE owned AS SELECT id, record FROM alerts
    WHERE instr(record, '"country"') > 0 OR instr(record, '"as"') > 0;  -- only enriched public addresses have terms
INSERT OR IGNORE INTO alert_owners SELECT term, id FROM (
    SELECT 'c:' || json_extract(record, '$.enrichment.src.country') AS term, id FROM owned
    UNION ALL SELECT 'c:' || json_extract(record, '$.enrichment.dest.country'), id FROM owned
    UNION ALL SELECT 'a:' || json_extract(record, '$.enrichment.src.as.number'), id FROM owned
    UNION ALL SELECT 'a:' || json_extract(record, '$.enrichment.dest.as.number'), id FROM owned
    UNION ALL SELECT 'n:' || lower(json_extract(record, '$.enrichment.src.as.name')), id FROM owned
    UNION ALL SELECT 'n:' || lower(json_extract(record, '$.enrichment.dest.as.name')), id FROM owned
) WHERE term IS NOT NULL;
DROP TABLE owned;
INSERT OR IGNORE INTO owner_names SELECT substr(term, 3) FROM alert_owners WHERE term >= 'n:' AND term < 'n;';
"""

MIGRATIONS: list[str] = [
    # 1: alerts, stats, mutes, and roll-ups that keep the overview fast at a million alerts
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        type TEXT NOT NULL,
        severity INTEGER NOT NULL,
        src_ip TEXT, dest_ip TEXT, src_key TEXT, dest_key TEXT,
        src_port INTEGER, dest_port INTEGER, proto TEXT,
        message TEXT NOT NULL,
        record TEXT NOT NULL,
        acknowledged INTEGER NOT NULL DEFAULT 0,
        muted INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX alerts_ts ON alerts(ts);
    CREATE INDEX alerts_type ON alerts(type, id);
    CREATE INDEX alerts_severity ON alerts(severity, id);
    CREATE INDEX alerts_src ON alerts(src_key, id);
    CREATE INDEX alerts_dest ON alerts(dest_key, id);
    CREATE INDEX alerts_dport ON alerts(dest_port, id);
    CREATE TABLE alert_minutes (minute INTEGER NOT NULL, type TEXT NOT NULL, count INTEGER NOT NULL,
                                PRIMARY KEY (minute, type)) WITHOUT ROWID;
    CREATE TABLE alert_sources (src_ip TEXT PRIMARY KEY, count INTEGER NOT NULL, last_ts REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE stats (id INTEGER PRIMARY KEY, ts REAL NOT NULL, record TEXT NOT NULL);
    CREATE INDEX stats_ts ON stats(ts);
    CREATE TABLE mutes (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        cidr TEXT NOT NULL,
        dest_port INTEGER,
        until REAL NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 2: composite indexes for type + address filters; per-type totals; top sources by index
    """
    CREATE INDEX alerts_type_src ON alerts(type, src_key);
    CREATE INDEX alerts_type_dest ON alerts(type, dest_key);
    CREATE INDEX alert_sources_count ON alert_sources(count);
    CREATE TABLE alert_types (type TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO alert_types SELECT type, count(*) FROM alerts WHERE muted = 0 GROUP BY type;
    """,
    # 3: retention by insertion time (alert_batches: the last id of each write and when it was
    # written; ids grow with insertion); the spool's ids so a replay never stores twice. Three
    # indexes go: the type+address composites halved the write rate of an alert storm (a type +
    # CIDR filter is served by alerts_type), and alerts_dport was never used (the port filter
    # is dest_port OR src_port, which scans by id)
    """
    DROP INDEX alerts_type_src;
    DROP INDEX alerts_type_dest;
    DROP INDEX alerts_dport;
    CREATE TABLE alert_batches (last_id INTEGER PRIMARY KEY, inserted REAL NOT NULL);
    CREATE INDEX alert_batches_inserted ON alert_batches(inserted);
    INSERT INTO alert_batches SELECT max(id), CAST(strftime('%s', 'now') AS REAL) FROM alerts HAVING count(*) > 0;
    ALTER TABLE alerts ADD COLUMN uid TEXT;
    CREATE UNIQUE INDEX alerts_uid ON alerts(uid) WHERE uid IS NOT NULL;
    """,
    # 4: sensors (a generated column from EVE host) and the per-sensor roll-ups (store/rollups.py)
    SQLITE_SENSORS,
    # 5: full-text search (FTS5 over message and record, indexed by the dashboard; store/search.py)
    SQLITE_FTS,
    # 6: per-sensor sources by index, the fleet's incidents by last_ts (store/sensor_tables.py)
    SQLITE_SENSOR_SOURCES,
    # 7: an alert's packets (EVE `packets`: capture file and frame numbers, or a live pcap's name),
    # generated from the record so the writer is unchanged (packet_ring.py, alert_pcap.py)
    "ALTER TABLE alerts ADD COLUMN packets TEXT GENERATED ALWAYS AS (json_extract(record, '$.packets')) VIRTUAL;",
    # 8: saved `wirewatch tune` runs, for the dashboard's tune page (store/tune_runs.py)
    SQLITE_TUNE_RUNS,
    # 9: the alerts table from the one column list (store/tables.py; above)
    SQLITE_ONE_COLUMN_LIST,
    # 10: the severity index only for high severity (store/tables.py): one index fewer per alert
    SEVERITY_INDEX,
    # 11: addresses are single words of the full-text index, rebuilt in the background (store/search.py)
    SQLITE_FTS_ADDRESSES,
    # 12: the source roll-ups caught up in bulk after a storm (store/deferred.py)
    SQLITE_DEFERRED_SOURCES,
    # 13: a record's values are words apart from their keys' colons, index rebuilt (store/search.py)
    SQLITE_FTS_RECORD_WORDS,
    # 14: a colon or full stop ending a word is punctuation, in message and record; index rebuilt
    SQLITE_FTS_TEXT_WORDS,
    # 15: the acknowledged alerts by id, a partial index (store/tables.py): free for the writer
    ACKNOWLEDGED_INDEX,
    # 16: each alert's EVE flow_id, by (type, flow_id, id): an update finds its alert (store/tables.py)
    SQLITE_FLOW_IDS,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the latest schema; returns the version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = row[0] if row else 0
    if row is None:
        conn.execute("INSERT INTO schema_version VALUES (0)")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN; {script}; UPDATE schema_version SET version = {number}; COMMIT;")
        version = number
    return version


def migrate_known(conn: sqlite3.Connection, where: str, what: str) -> int:
    """migrate(), refusing a store a newer wirewatch migrated: spool.StoreRefused, one line
    naming `where` and both versions, and `what` this one does not do with it."""
    version = migrate(conn)
    if version > len(MIGRATIONS):
        raise StoreAhead(version, len(MIGRATIONS)).refusal(where, what)
    return version


def spool_path(db_path: str) -> str:
    """Where alerts wait while the store cannot take them (store/spool.py)."""
    return db_path + ".spool"


def store_files(db_path: str) -> list[str]:
    """The database, its WAL companions and its spool files that exist (what a new owner
    must be given)."""
    spool = spool_path(db_path)
    candidates = (db_path, db_path + "-wal", db_path + "-shm", spool, spool + ".done")
    return [p for p in candidates if os.path.exists(p)]


_V4_MAPPED = "00000000000000000000ffff"  # ::ffff:0:0/96 as the first 24 of 32 hex digits


def addr_key(text: str | None) -> str | None:
    """Address -> 32 hex digits of its 128-bit (IPv4-mapped) value: ranges compare as text.

    inet_pton is C and strict; it runs once per stored address, so a storm of alerts does
    not spend most of its time in ipaddress (which still handles scoped IPv6)."""
    if not text:
        return None
    try:
        if ":" not in text:
            return _V4_MAPPED + socket.inet_pton(socket.AF_INET, text).hex()
        return socket.inet_pton(socket.AF_INET6, text).hex()
    except OSError:
        pass
    ip = ipaddress.ip_address(text)
    if ip.version == 4:
        ip = ipaddress.IPv6Address(f"::ffff:{ip}")
    return f"{int(ip):032x}"


def record_json(record: dict[str, Any]) -> str:
    """An alert or event as the JSON text the store keeps (orjson: the store's hot path)."""
    try:
        return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:  # a type orjson does not know: the standard library's rules
        return json.dumps(record, default=str)


def record_of(text: str | bytes) -> Any:
    """A stored JSON text (a record, a stats event) read back: orjson (the dashboard reads
    50 records a page), the standard library for what orjson refuses and it reads (NaN,
    integers beyond 64 bits: an older writer's fallback above), so the value is the same."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


@functools.lru_cache(maxsize=1024)
def cidr_range(text: str) -> tuple[str, str]:
    """CIDR or address -> inclusive (low, high) keys. Raises ValueError on bad input.
    (Kept for the last 1,024 texts: an alert list's read asks for its filter's range 7 times,
    parsed by ipaddress each time a seventh of a type + CIDR request's CPU.)"""
    net = ipaddress.ip_network(text.strip(), strict=False)
    lo, hi = net.network_address, net.broadcast_address
    if net.version == 4:
        lo, hi = ipaddress.IPv6Address(f"::ffff:{lo}"), ipaddress.IPv6Address(f"::ffff:{hi}")
    return f"{int(lo):032x}", f"{int(hi):032x}"
