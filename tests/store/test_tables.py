"""The alerts table spelled once (store/tables.py): both stores' tables come from one column
list, and a store made by the previous schema (6) upgrades to it with nothing lost: the
sensor becomes a stored column, the attacker is filled in, the roll-ups are keyed by
attacker, and owner terms make country / AS filters indexed."""

from __future__ import annotations

import json
import sqlite3

from store_fixtures import sqlite_at_version

from wirewatch.store import postgres_schema, schema
from wirewatch.store.queries import AlertFilter, Store
from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.store.tables import ALERT_COLUMNS, attacker_of, columns, create_alerts, owner_terms

T0 = 1_767_225_600.0


def record(i: int, host: str = "edge-a") -> dict:
    src, dest = f"203.0.113.{i % 7}", "192.168.1.1"
    a = {"timestamp": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000000+0000", "event_type": "alert",
         "src_ip": src, "dest_ip": dest, "dest_port": 22, "proto": "TCP", "host": host, "flow_id": i,
         "alert": {"severity": 2, "signature_id": 1, "source": {"ip": src}, "target": {"ip": dest}},
         "type": "port_scan", "message": f"Possible port scan from {src}", "evidence": {},
         "enrichment": {"src": {"label": "public", "country": "NL" if i % 2 else "DE", "as": {"number": 64500 + i % 3,
                                                                                              "name": "Example Net"}},
                        "dest": {"label": "private"}}}
    if i % 10 == 0:  # a blacklist hit: the local host talked to a listed one, the listed one is the attacker
        a |= {"type": "blacklist", "src_ip": dest, "dest_ip": src}
        a["alert"] |= {"source": {"ip": src}, "target": {"ip": dest}}
        a["enrichment"] = {"src": {"label": "private"}, "dest": a["enrichment"]["src"]}
    return a


def test_both_stores_render_the_one_column_list():
    names = [c[0] for c in ALERT_COLUMNS]
    sqlite, pg = create_alerts("sqlite"), create_alerts("postgresql")
    for name, decl in columns("sqlite"):
        assert f"{name} {decl}" in sqlite
    for name, decl in columns("postgresql"):
        assert f"{name} {decl}" in pg
    assert create_alerts("postgresql") in postgres_schema.MIGRATIONS[0]
    assert {n for n, _ in columns("postgresql")} == set(names)
    assert {n for n, _ in columns("sqlite")} == set(names) - {"inserted", "search"}


def test_attacker_and_owner_terms():
    scan, hit = record(1), record(10)
    assert attacker_of(scan) == scan["src_ip"] and attacker_of(hit) == hit["dest_ip"]
    assert set(owner_terms(scan)) == {"c:NL", "a:64501", "n:example net"}
    assert owner_terms({"alert": {}}) == ()


def _v6_store(path: str, records: list[dict]) -> None:
    """A store as the schema before the one column list (8) left it, filled the way its writer
    did (rows and roll-ups)."""
    c = sqlite_at_version(path, 8)
    for a in records:
        ts = 1_767_225_600.0 + a["flow_id"]
        c.execute("INSERT INTO alerts (ts, type, severity, src_ip, dest_ip, src_key, dest_key, dest_port, proto, message,"
                  " record) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                  (ts, a["type"], 2, a["src_ip"], a["dest_ip"], schema.addr_key(a["src_ip"]),
                   schema.addr_key(a["dest_ip"]), 22, "TCP", a["message"], json.dumps(a)))
    c.executescript("""
        INSERT INTO alert_minutes SELECT CAST(ts / 60 AS INTEGER), type, count(*) FROM alerts GROUP BY 1, 2;
        INSERT INTO alert_types SELECT type, count(*) FROM alerts GROUP BY 1;
        INSERT INTO alert_sources SELECT src_ip, count(*), max(ts) FROM alerts GROUP BY 1;
        INSERT INTO sensor_minutes SELECT sensor, CAST(ts / 60 AS INTEGER), type, count(*) FROM alerts GROUP BY 1, 2, 3;
        INSERT INTO source_activity SELECT src_ip, sensor, type, count(*), min(ts), max(ts) FROM alerts GROUP BY 1, 2, 3;
        INSERT INTO sensor_sources SELECT sensor, src_ip, count(*), max(ts) FROM alerts GROUP BY 1, 2;
        INSERT INTO alert_batches SELECT max(id), 1767225600 FROM alerts;
    """)
    assert c.execute("SELECT version FROM schema_version").fetchone()[0] == 8
    c.close()


def test_a_store_of_the_previous_schema_upgrades_with_nothing_lost(tmp_path):
    path = str(tmp_path / "old.db")
    old = [record(i, host=("edge-a", "edge-b")[i % 2]) for i in range(200)]
    _v6_store(path, old)
    sink = SqliteSink(path, retention_days=100000)  # opening migrates
    assert sink.conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(schema.MIGRATIONS)
    sink.write([record(i) for i in range(200, 260)])  # and the new writer goes on where it left
    sink.close()
    c = sqlite3.connect(path)
    rows = c.execute("SELECT id, sensor, attacker, record FROM alerts ORDER BY id").fetchall()
    assert [json.loads(r[3])["flow_id"] for r in rows] == list(range(260))
    for _, sensor, attacker, text in rows:
        a = json.loads(text)
        assert sensor == a["host"] and attacker == a["alert"]["source"]["ip"]
    # the generated sensor column is now a stored one
    table = c.execute("SELECT sql FROM sqlite_master WHERE name = 'alerts'").fetchone()[0]
    assert "sensor TEXT NOT NULL DEFAULT ''," in table
    n = len(rows)
    for table in ("alert_types", "alert_minutes", "alert_sources", "sensor_types", "sensor_minutes", "sensor_sources", "source_activity"):
        assert c.execute(f"SELECT sum(count) FROM {table}").fetchone()[0] == n, table
    # roll-ups by attacker: the blacklist alerts count for the listed (remote) host, not for 192.168.1.1
    for table in ("sensor_sources", "alert_sources", "source_activity"):
        assert c.execute(f"SELECT count(*) FROM {table} WHERE src_ip = '192.168.1.1'").fetchone()[0] == 0, table
    c.close()

    store = Store(path)
    expect_nl = [r[0] for r in rows if json.loads(r[3])["flow_id"] % 2][::-1][:50]
    assert [r["id"] for r in store.alerts(AlertFilter(country="nl"))] == expect_nl
    assert {r["id"] for r in store.alerts(AlertFilter(asn="64501", limit=500))} == {
        r[0] for r in rows if json.loads(r[3])["flow_id"] % 3 == 1}
    assert len(store.alerts(AlertFilter(asn="xample", limit=500))) == n
    assert store.alerts(AlertFilter(asn="no such network")) == []
    # an incident is an attacker: 203.0.113.3's alerts include the blacklist hits where it is dest_ip
    timeline = store.incident("203.0.113.3")
    assert {a["type"] for a in timeline} == {"port_scan", "blacklist"}
    assert all("203.0.113.3" in (a["src_ip"], a["dest_ip"]) for a in timeline)
    incidents = {i["src_ip"]: i for i in store.incidents(limit=500)}
    assert "192.168.1.1" not in incidents and incidents["203.0.113.3"]["alerts"] == len(timeline)
    store.close()
