"""An update (EVE `update_of`) finds the alert it updates by the alerts' flow_id column and its
(type, flow_id, id) index (migration 16 in SQLite, 8 in PostgreSQL), however many alerts of
its type lie between them: the dashboard used to read the newest 5,000 of the type, and an
alert further back was "no longer in the store". The original and its updates come from a
real run (a random-source SYN flood that grows after its alert); between them, 6,000 other
syn_flood alerts (that run's alert re-keyed), one of them a later alert of the same flow."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import store_sink
from dashboard_fixtures import TOKEN, login
from store_fixtures import insert_as_before_flow_ids, sqlite_at_version

from wirewatch import config
from wirewatch.capture.pcapfile import read_batches
from wirewatch.craft import write_syn_storm
from wirewatch.engine import Engine
from wirewatch.store import postgres_schema, schema
from wirewatch.store.postgres_schema import connect
from wirewatch.store.queries import open_store
from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.web import create_app

BETWEEN = 6_000  # other alerts of the type between an alert and its update (the old scan read 5,000)


def flood_run(tmp_path: Path) -> list[dict[str, Any]]:
    """A random-source SYN flood growing after its alert: the alert, then updates of it."""
    storm = write_syn_storm(str(tmp_path / "grow.pcap"), 8_000, "10.0.0.2", 8080, duration=8.0)
    engine = Engine(config.build(), [])
    alerts = []
    for raw in read_batches(storm, 4096):
        alerts += engine.feed(raw)
    return alerts + engine.flush() + engine.alerts.finish()


def stored_in_order(alerts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The run's alerts with BETWEEN other syn_flood alerts after the original and before its first
    update (one of them a later alert of the original's own flow, with its own timestamp), and the
    original."""
    first = next(a for a in alerts if a["type"] == "syn_flood" and "update_of" not in a)
    at = next(i for i, a in enumerate(alerts) if "update_of" in a)
    assert alerts.index(first) < at
    others = [dict(first, flow_id=first["flow_id"] + 1 + i, dest_ip=f"10.7.{i // 250}.{i % 250 + 1}",
                   timestamp=f"{first['timestamp'][:17]}{i % 60:02d}.{i:06d}+0000") for i in range(BETWEEN)]
    others[BETWEEN // 2] = dict(first, timestamp=others[BETWEEN // 2]["timestamp"])  # the flow's later alert
    assert others[BETWEEN // 2]["timestamp"] != first["timestamp"]
    return alerts[:at] + others + alerts[at:], first


def test_an_update_finds_its_alert_past_more_than_5000_alerts_of_its_type(tmp_path, store_url):
    """SQLite and the real PostgreSQL server: every update's link leads to its alert, through the index."""
    records, first = stored_in_order(flood_run(tmp_path))
    sink = store_sink(store_url, tmp_path)
    for lo in range(0, len(records), 500):  # batches, as a sensor writes them
        sink.write(records[lo:lo + 500])
    sink.close()
    store = open_store(store_url)
    try:
        rows = store._rows("SELECT id, flow_id, record FROM alerts WHERE type = 'syn_flood' ORDER BY id")
        by_record = [json.loads(r["record"]) for r in rows]
        assert [r["flow_id"] for r in rows] == [a["flow_id"] for a in by_record]  # the writer fills the column
        original = next(r["id"] for r, a in zip(rows, by_record) if a == first)
        updates = [r["id"] for r, a in zip(rows, by_record) if "update_of" in a]
        assert updates and all(u - original > BETWEEN for u in updates)
        for u in updates:
            assert store.updated_alert(u, store.alert(u)["record"]) == original
        if not store_url.startswith("postgresql"):
            plan = " ".join(r[3] for r in store.conn.execute(
                "EXPLAIN QUERY PLAN SELECT id, record FROM alerts WHERE type = ? AND flow_id = ? AND id < ? "
                "ORDER BY id DESC LIMIT 200", ("syn_flood", first["flow_id"], updates[0])))
            assert "alerts_flow" in plan
    finally:
        store.close()
    client = login(create_app(store_url, TOKEN).test_client())
    for u in updates:
        r = client.get(f"/alerts/{u}/updated")
        assert r.status_code == 302 and r.headers["Location"].endswith(f"/alerts/{original}")


def test_a_store_of_schema_15_gets_its_flow_ids_and_the_index(tmp_path):
    """Migration 16 fills the column from each record (json_extract) and builds the index; an
    update stored before the upgrade finds its alert, one stored after it too."""
    records, first = stored_in_order(flood_run(tmp_path))
    at = next(i for i, a in enumerate(records) if "update_of" in a)
    path = str(tmp_path / "v15.db")
    c = sqlite_at_version(path, 15)
    insert_as_before_flow_ids(c, records[:at + 1])  # through the first update, as schema 15's writer stored them
    c.execute("INSERT INTO alerts (ts, type, severity, message, record) VALUES (0, 'syn_flood', 2, 'no flow', '{}')")
    assert "flow_id" not in {r[1] for r in c.execute("PRAGMA table_info(alerts)")}
    c.close()
    sink = SqliteSink(path)  # opening migrates: 15 -> 16
    sink.write(records[at + 1:])
    sink.close()
    c = sqlite3.connect(path)
    assert c.execute("SELECT version FROM schema_version").fetchone()[0] == len(schema.MIGRATIONS) == 16
    rows = c.execute("SELECT id, flow_id, record FROM alerts ORDER BY id").fetchall()
    assert [fid for _, fid, _ in rows] == [json.loads(rec).get("flow_id") for _, _, rec in rows]
    assert rows[at + 1][1] is None  # the record without a flow_id
    (sql,) = c.execute("SELECT sql FROM sqlite_master WHERE name = 'alerts_flow'").fetchone()
    assert sql == "CREATE INDEX alerts_flow ON alerts(type, flow_id, id)"
    c.close()
    store = open_store(path)
    try:
        original = next(i for i, _, rec in rows if json.loads(rec) == first)
        updates = [i for i, _, rec in rows if "update_of" in json.loads(rec)]
        assert updates[0] <= at + 1 < updates[-1]  # stored before the upgrade, and after
        assert [store.updated_alert(u, store.alert(u)["record"]) for u in updates] == [original] * len(updates)
    finally:
        store.close()


def test_a_postgresql_store_of_schema_7_gets_its_flow_ids_and_the_index(tmp_path, pg_url):
    """Migration 8 adds the column a store of release 7 lacks, fills it from each record and builds the index."""
    records, first = stored_in_order(flood_run(tmp_path))
    conn = connect(pg_url, autocommit=True)
    for script in postgres_schema.MIGRATIONS[:7]:  # the store as release 7 left it
        conn.execute(script)
    conn.execute("ALTER TABLE alerts DROP COLUMN flow_id")  # (release 7's migration 1 had no such column)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (7)")
    from wirewatch.store.rollups import prepare
    from wirewatch.store.tables import WRITTEN
    rows, _ = prepare(records, [None] * len(records))
    names = WRITTEN[:-1]
    assert WRITTEN[-1] == "flow_id"
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO alerts ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                        [r[:-1] for r in rows])
    conn.execute("INSERT INTO alerts (ts, type, severity, message, record) VALUES (0, 'x', 2, 'm', %s), (0, 'x', 2, 'm', %s)",
                 ('{"flow_id": "7"}', '{"flow_id": 8}'))  # a text flow_id stays in the record only, as the writer does
    assert postgres_schema.migrate(conn) == len(postgres_schema.MIGRATIONS) >= 8
    got = conn.execute("SELECT flow_id, record FROM alerts ORDER BY id").fetchall()
    assert [f for f, _ in got[:-2]] == [a["flow_id"] for a in records] and [f for f, _ in got[-2:]] == [None, 8]
    assert conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'alerts_flow'").fetchone()[0].endswith(
        "(type, flow_id, id)")
    conn.close()
    store = open_store(pg_url)
    try:
        ids = store._rows("SELECT id, record FROM alerts WHERE type = 'syn_flood' ORDER BY id")
        original = next(r["id"] for r in ids if json.loads(r["record"]) == first)
        updates = [r["id"] for r in ids if "update_of" in json.loads(r["record"])]
        assert updates and [store.updated_alert(u, store.alert(u)["record"]) for u in updates] == [original] * len(updates)
    finally:
        store.close()


def test_an_update_an_older_sensor_wrote_after_the_migration_still_finds_its_alert(tmp_path):
    """A sensor of an earlier version still writing after the upgrade leaves flow_id empty (README,
    Upgrading): its alerts are then looked for among the type's alerts without one."""
    records, first = stored_in_order(flood_run(tmp_path))
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write([a for a in records[:100] if a["flow_id"] != first["flow_id"]])  # this version's writer: other flows
    sink.close()
    c = sqlite3.connect(path, isolation_level=None)
    insert_as_before_flow_ids(c, [first] + [a for a in records if "update_of" in a])  # the older one's
    c.close()
    store = open_store(path)
    try:
        rows = store._rows("SELECT id, flow_id, record FROM alerts WHERE flow_id IS NULL ORDER BY id")
        assert json.loads(rows[0]["record"]) == first and len(rows) > 1
        for r in rows[1:]:
            assert store.updated_alert(r["id"], json.loads(r["record"])) == rows[0]["id"]
    finally:
        store.close()


@pytest.mark.parametrize("value", [True, "12", 1.5, 1 << 64])
def test_a_flow_id_the_column_cannot_hold_stays_in_the_record_only(tmp_path, value):
    from dashboard_fixtures import fake_alert
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write([fake_alert(1) | {"flow_id": value}])
    sink.close()
    c = sqlite3.connect(path)
    assert c.execute("SELECT flow_id FROM alerts").fetchone() == (None,)
    c.close()
