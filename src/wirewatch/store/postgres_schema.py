"""The PostgreSQL store's schema, its migrations, and connecting to it through psycopg 3.

The same tables as the SQLite store (alerts, stats, mutes, the roll-ups), with a `sensor`
column on alerts and stats, a `uid` that makes replays idempotent, the insertion time that
retention goes by, and a generated `tsvector` for text search. Many sensors connect at
once: migrations run under an advisory lock, so the first one migrates and the others wait.
"""

from __future__ import annotations

from typing import Any

from .sensor_tables import ATTACKER_REBUILD, ROLLUP_TABLES, SENSOR_SOURCES
from .spool import StoreAhead
from .tables import ACKNOWLEDGED_INDEX, POSTGRES_FLOW_IDS, SEVERITY_INDEX, create_alerts, owner_tables
from .tune_runs import POSTGRES_TUNE_RUNS

MIGRATION_LOCK = 0x77697265  # pg_advisory_xact_lock key ("wire")
CONNECT_TIMEOUT_S = 5

# The GIN index of alerts.search takes new alerts' words into a pending list (fastupdate),
# unsorted, which every search through the index reads whole, and merges it into the index when
# it outgrows gin_pending_list_limit: 4 MB by default, 512 pages that a sensor writing 1,000
# alerts/s fills in about 40 s. A rare word then cost 1.5 ms (124 pending pages) instead of
# 0.06 ms (4 pages) with the list empty. At 128 kB a search reads at most 16 pending pages;
# the writers merge more often (50,000 alerts in batches of 100 or 5,000: 2.7 s either way),
# where writing the index directly (fastupdate off) took 6-7 s.
GIN_PENDING_LIMIT = "ALTER INDEX alerts_search SET (gin_pending_list_limit = 128);"

MIGRATIONS: list[str] = [
    # 1: everything the SQLite store has after its migrations, plus sensors, uids and text search
    """
    """ + create_alerts("postgresql") + """
    CREATE INDEX alerts_ts ON alerts(ts);
    CREATE INDEX alerts_type ON alerts(type, id);
    CREATE INDEX alerts_severity ON alerts(severity, id);
    CREATE INDEX alerts_src ON alerts(src_key, id);
    CREATE INDEX alerts_dest ON alerts(dest_key, id);
    CREATE INDEX alerts_dport ON alerts(dest_port, id);
    CREATE INDEX alerts_sport ON alerts(src_port, id);
    CREATE INDEX alerts_sensor ON alerts(sensor, id);
    CREATE INDEX alerts_inserted ON alerts(inserted);
    CREATE UNIQUE INDEX alerts_uid ON alerts(uid);
    CREATE INDEX alerts_search ON alerts USING GIN (search);
    CREATE TABLE alert_minutes (minute BIGINT NOT NULL, type TEXT NOT NULL, count BIGINT NOT NULL,
                                PRIMARY KEY (minute, type));
    CREATE TABLE alert_sources (src_ip TEXT PRIMARY KEY, count BIGINT NOT NULL, last_ts DOUBLE PRECISION NOT NULL);
    CREATE INDEX alert_sources_count ON alert_sources(count);
    CREATE TABLE alert_types (type TEXT PRIMARY KEY, count BIGINT NOT NULL);
    CREATE TABLE stats (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts DOUBLE PRECISION NOT NULL,
                        sensor TEXT NOT NULL DEFAULT '', record TEXT NOT NULL, uid TEXT);
    CREATE INDEX stats_ts ON stats(ts);
    CREATE INDEX stats_sensor ON stats(sensor, id);
    CREATE UNIQUE INDEX stats_uid ON stats(uid);
    CREATE TABLE mutes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        type TEXT NOT NULL,
        cidr TEXT NOT NULL,
        dest_port INTEGER,
        until DOUBLE PRECISION NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created DOUBLE PRECISION NOT NULL,
        hits BIGINT NOT NULL DEFAULT 0
    );
    """ + ROLLUP_TABLES,
    # 2: per-sensor sources by index, the fleet's incidents by last_ts (store/sensor_tables.py)
    SENSOR_SOURCES,
    # 3: an alert's packets (EVE `packets`), generated from the record as in the SQLite store
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS packets TEXT GENERATED ALWAYS AS ((record::jsonb -> 'packets')::text) STORED;",
    # 4: saved `wirewatch tune` runs, for the dashboard's tune page (store/tune_runs.py)
    POSTGRES_TUNE_RUNS,
    # 5: attackers (a store made by migration 1 from today's column list has the column
    # already), country / AS terms, per-sensor totals; type + source by index (sensor_tables.py)
    """
    ALTER TABLE alerts ADD COLUMN IF NOT EXISTS attacker TEXT;
    UPDATE alerts SET attacker = coalesce(record::jsonb #>> '{alert,source,ip}', src_ip)
        WHERE attacker IS NULL;
    """ + owner_tables("postgresql") + ATTACKER_REBUILD + """
    INSERT INTO alert_owners SELECT DISTINCT t.term, a.id FROM alerts a, LATERAL (VALUES
        ('c:' || (a.record::jsonb #>> '{enrichment,src,country}')), ('c:' || (a.record::jsonb #>> '{enrichment,dest,country}')),
        ('a:' || (a.record::jsonb #>> '{enrichment,src,as,number}')), ('a:' || (a.record::jsonb #>> '{enrichment,dest,as,number}')),
        ('n:' || lower(a.record::jsonb #>> '{enrichment,src,as,name}')), ('n:' || lower(a.record::jsonb #>> '{enrichment,dest,as,name}'))
    ) AS t(term) WHERE t.term IS NOT NULL AND a.record LIKE '%"enrichment"%';
    INSERT INTO owner_names SELECT DISTINCT substr(term, 3) FROM alert_owners WHERE term LIKE 'n:%';
    CREATE INDEX alert_owners_id ON alert_owners(id);
    CREATE INDEX alerts_type_src ON alerts(type, src_key, id);
    """,
    # 6: the severity index only for high severity, as SQLite's migration 10 (store/tables.py)
    SEVERITY_INDEX,
    # 7: the acknowledged alerts by id, a partial index, as SQLite's migration 15 (store/tables.py)
    ACKNOWLEDGED_INDEX,
    # 8: each alert's EVE flow_id, by (type, flow_id, id), as SQLite's 16 (store/tables.py)
    POSTGRES_FLOW_IDS,
    # 9: text search's index keeps a short pending list (GIN_PENDING_LIMIT)
    GIN_PENDING_LIMIT,
]


class MigrationRunning(Exception):
    """A wirewatch is migrating the store now (it holds MIGRATION_LOCK): a write is retried, then
    spooled, rather than wait behind the migration with the capture loop."""


def check_writable(conn: Any) -> None:
    """First in each write transaction: a shared hold of MIGRATION_LOCK until it ends (so no
    migration commits in between: a migration takes the lock exclusively), then the schema's
    version, read after the lock (its own statement: a statement reads what was committed when
    it began). One round trip (pipelined). StoreAhead when a newer wirewatch migrated the store."""
    with conn.pipeline():
        lock = conn.execute("SELECT pg_try_advisory_xact_lock_shared(%s)", (MIGRATION_LOCK,))
        version = conn.execute("SELECT version FROM schema_version")
    if not lock.fetchone()[0]:
        raise MigrationRunning("a wirewatch is migrating the store")
    known(version.fetchone()[0])


def known(version: int) -> None:
    """StoreAhead when the store's schema is newer than this wirewatch's migrations."""
    if version > len(MIGRATIONS):
        raise StoreAhead(version, len(MIGRATIONS))


def migrate_known(conn: Any, url: str, what: str) -> int:
    """migrate(), refusing a store a newer wirewatch migrated: spool.StoreRefused, one line
    naming the URL (no password) and both versions, and `what` this one does not do with it."""
    version = migrate(conn)
    try:
        known(version)
    except StoreAhead as exc:
        raise exc.refusal(shown(url), what) from None
    return version


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def shown(url: str) -> str:
    """A store's name for messages and logs: a PostgreSQL URL without its password, a SQLite
    file as it is."""
    if not is_postgres(url):
        return url
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    try:
        parts = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - a URL psycopg cannot parse is shown as its scheme only
        return url.split("://", 1)[0] + "://..."
    parts.pop("password", None)
    return make_conninfo("", **parts)


def connect(url: str, read_only: bool = False, autocommit: bool = False) -> Any:
    """A psycopg connection; OSError with one line naming the database if it cannot be reached."""
    import psycopg
    try:
        conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=autocommit,
                               application_name="wirewatch")
    except psycopg.Error as exc:
        raise OSError(f"{shown(url)}: cannot open alert store: {str(exc).strip().splitlines()[0]}") from None
    if read_only:
        conn.read_only = True
        if autocommit:  # psycopg applies read_only at BEGIN, which autocommit never sends
            conn.execute("SET default_transaction_read_only = on")
    return conn


def migrate(conn: Any) -> int:
    """Bring the database to the latest schema under an advisory lock; returns the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (0)")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute(script)
            conn.execute("UPDATE schema_version SET version = %s", (number,))
            version = number
    return version
