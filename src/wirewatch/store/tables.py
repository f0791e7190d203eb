"""The alerts table spelled once for both stores: one column list, rendered for SQLite and
for PostgreSQL, and the tables both stores add beside it for the dashboard's filters
(`alert_owners`: country / AS terms of either address, by index) and totals
(`sensor_types`: alerts per sensor and type).

A column is (name, SQLite declaration, PostgreSQL declaration); None where a store has no
such column (PostgreSQL keeps the insertion time and a generated tsvector on the row,
SQLite keeps insertion times per batch in alert_batches and an FTS5 table beside it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ALERT_COLUMNS: list[tuple[str, str | None, str | None]] = [
    ("id", "INTEGER PRIMARY KEY", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ("ts", "REAL NOT NULL", "DOUBLE PRECISION NOT NULL"),
    ("type", "TEXT NOT NULL", "TEXT NOT NULL"),
    ("severity", "INTEGER NOT NULL", "INTEGER NOT NULL"),
    ("src_ip", "TEXT", "TEXT"),
    ("dest_ip", "TEXT", "TEXT"),
    ("src_key", "TEXT", "TEXT"),
    ("dest_key", "TEXT", "TEXT"),
    ("src_port", "INTEGER", "INTEGER"),
    ("dest_port", "INTEGER", "INTEGER"),
    ("proto", "TEXT", "TEXT"),
    ("message", "TEXT NOT NULL", "TEXT NOT NULL"),
    ("record", "TEXT NOT NULL", "TEXT NOT NULL"),
    ("acknowledged", "INTEGER NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
    ("muted", "INTEGER NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
    ("sensor", "TEXT NOT NULL DEFAULT ''", "TEXT NOT NULL DEFAULT ''"),
    ("attacker", "TEXT", "TEXT"),  # alert.source.ip (the attacking address), else src_ip
    ("uid", "TEXT", "TEXT"),
    ("packets", "TEXT GENERATED ALWAYS AS (json_extract(record, '$.packets')) VIRTUAL",
     "TEXT GENERATED ALWAYS AS ((record::jsonb -> 'packets')::text) STORED"),  # EVE `packets` (alert_pcap.py)
    ("inserted", None, "DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM clock_timestamp())"),
    ("search", None, "TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', message || ' ' || record)) STORED"),
    ("flow_id", "INTEGER", "BIGINT"),  # EVE flow_id: an update finds the alert it updates by (type, flow_id, id)
]

# Columns a later migration adds (ALTER TABLE), left out where an earlier migration builds the
# table from this list (SQLite's 9 rebuilds it; PostgreSQL's 1 has them, its 8 adds IF NOT EXISTS).
ADDED_LATER = ("flow_id",)

# What a writer supplies for each alert, in this order (the rest are defaults or generated).
WRITTEN = ("ts", "type", "severity", "src_ip", "dest_ip", "src_key", "dest_key", "src_port", "dest_port", "proto",
           "message", "record", "muted", "sensor", "attacker", "uid", "flow_id")


def columns(dialect: str, without: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(name, declaration) of the alerts table in `dialect` ("sqlite" or "postgresql")."""
    at = 1 if dialect == "sqlite" else 2
    return [(c[0], decl) for c in ALERT_COLUMNS if (decl := c[at]) is not None and c[0] not in without]


def create_alerts(dialect: str, name: str = "alerts", without: tuple[str, ...] = ()) -> str:
    body = ",\n    ".join(f"{n} {decl}" for n, decl in columns(dialect, without))
    return f"CREATE TABLE {name} (\n    {body}\n);\n"


def insert_alerts(placeholder: str) -> str:
    return (f"INSERT INTO alerts ({', '.join(WRITTEN)}) VALUES ({', '.join([placeholder] * len(WRITTEN))})")


# SQLite's indexes (PostgreSQL's migration 1 has the same): one per filter of the alert
# list, each ending in id so the newest page of any one filter is read in order (keyset
# pagination), never sorted. (Migration 10 then makes the severity index partial: SEVERITY_INDEX.)
SQLITE_INDEXES = """
CREATE INDEX alerts_ts ON alerts(ts);
CREATE INDEX alerts_type ON alerts(type, id);
CREATE INDEX alerts_severity ON alerts(severity, id);
CREATE INDEX alerts_src ON alerts(src_key, id);
CREATE INDEX alerts_type_src ON alerts(type, src_key, id);
CREATE INDEX alerts_dest ON alerts(dest_key, id);
CREATE INDEX alerts_dport ON alerts(dest_port, id);
CREATE INDEX alerts_sport ON alerts(src_port, id) WHERE src_port IS NOT NULL;
CREATE INDEX alerts_sensor ON alerts(sensor, id);
"""

# Country and AS of either address, as terms ('c:US', 'a:15169', 'n:<AS name, lower case>')
# keyed by term then alert id: a country filter reads its newest alerts in order. Only alerts
# with an enriched public address have terms (a storm of private sources writes none).
# owner_names lists the AS names seen, so a filter by part of a name finds its terms.
OWNER_TABLES = """
CREATE TABLE alert_owners (term TEXT NOT NULL, id BIGINT NOT NULL, PRIMARY KEY (term, id)){without_rowid};
CREATE TABLE owner_names (name TEXT PRIMARY KEY){without_rowid};
CREATE TABLE sensor_types (sensor TEXT NOT NULL, type TEXT NOT NULL, count BIGINT NOT NULL,
                           PRIMARY KEY (sensor, type)){without_rowid};
"""


def owner_tables(dialect: str) -> str:
    return OWNER_TABLES.format(without_rowid=" WITHOUT ROWID" if dialect == "sqlite" else "")


def owner_terms(a: dict[str, Any]) -> Iterable[str]:
    """The distinct owner terms of an alert's enrichment (either address)."""
    found = a.get("enrichment")
    if not found:
        return ()
    terms = set()
    for side in found.values():
        country = side.get("country")
        if country:
            terms.add(f"c:{country}")
        asys = side.get("as")
        if asys:
            if asys.get("number") is not None:
                terms.add(f"a:{asys['number']}")
            if asys.get("name"):
                terms.add(f"n:{str(asys['name']).lower()}")
    return terms


def attacker_of(a: dict[str, Any]) -> str | None:
    """The attacking address: EVE `alert.source.ip` (Suricata's, for rules with a target),
    else src_ip (a blacklist alert for a local host talking to a listed one names the
    listed one)."""
    source = a["alert"].get("source")
    return source["ip"] if source and source.get("ip") else a.get("src_ip")


# Each index costs the writer about 1 µs per alert. Severities 2 and 3 are common: their
# newest page is found by reading alerts in id order; only high severity (1) can be rare
# enough to need an index. The query names the value as a literal (queries.py), which is
# what lets either store use a partial index.
SEVERITY_INDEX = """
DROP INDEX alerts_severity;
CREATE INDEX alerts_severity ON alerts(severity, id) WHERE severity = 1;
"""


# Acknowledged alerts are few (an analyst marks them one page at a time) and new alerts are
# never acknowledged, so an index of just them costs the writer nothing: the newest page of
# `acknowledged=true` walks it backwards and stops at the page's end (without it, every alert
# was read: 242 ms CPU at 1M). The query names the value as a literal (queries.py), as for
# the severity index.
ACKNOWLEDGED_INDEX = """
CREATE INDEX alerts_acknowledged ON alerts(id) WHERE acknowledged = 1;
"""


# An update (EVE `update_of`: the flow_id and timestamp of the alert it updates) finds its alert
# by (type, flow_id) on this index, newest first; it used to read the newest 5,000 alerts of
# the type, and one with more than that between it and its update was not found. Existing
# rows get the flow_id their record carries (SQLite 16, PostgreSQL 8).
SQLITE_FLOW_IDS = """
ALTER TABLE alerts ADD COLUMN flow_id INTEGER;
UPDATE alerts SET flow_id = json_extract(record, '$.flow_id') WHERE json_type(record, '$.flow_id') = 'integer';
CREATE INDEX alerts_flow ON alerts(type, flow_id, id);
"""
POSTGRES_FLOW_IDS = """
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS flow_id BIGINT;
UPDATE alerts SET flow_id = (record::jsonb ->> 'flow_id')::bigint
    WHERE flow_id IS NULL AND jsonb_typeof(record::jsonb -> 'flow_id') = 'number'
      AND record::jsonb ->> 'flow_id' ~ '^-?[0-9]{1,18}$';
CREATE INDEX IF NOT EXISTS alerts_flow ON alerts(type, flow_id, id);
"""
