"""store/sensor_tables.py: each sensor's last two stats events (its health and packet rate)
and its per-sensor roll-ups, in both stores; SQLite's triggers keep them true at retention."""

from __future__ import annotations

import sqlite3

from conftest import store_sink
from store_fixtures import engine_records

from wirewatch.store.queries import open_store
from wirewatch.store.sensor_tables import ROLLUP_TABLES, SENSOR_SOURCES, SENSOR_UPSERT


def stats_of(tmp_path, sensor: str, packets: int) -> dict:
    _, stats = engine_records(tmp_path, sensor)
    stats["stats"]["decoder"]["pkts"] = packets
    return stats


def test_a_sensor_row_keeps_its_last_two_stats_events(store_url, tmp_path):
    now = [1000.0]
    sink = store_sink(store_url, tmp_path, clock=lambda: now[0])
    for i, packets in enumerate((100, 400, 1000)):
        now[0] = 1000.0 + 10 * i
        sink.write_event(stats_of(tmp_path, "edge-a", packets))
    now[0] = 1005.0
    sink.write_event(stats_of(tmp_path, "edge-b", 7))
    sink.close()
    q = open_store(store_url)
    rows = {r["sensor"]: r for r in q._rows("SELECT sensor, first_seen, last_seen, prev_seen FROM sensors")}
    assert rows["edge-a"]["first_seen"] == 1000.0 and rows["edge-a"]["last_seen"] == 1020.0
    assert rows["edge-a"]["prev_seen"] == 1010.0 and rows["edge-b"]["prev_seen"] is None
    health = {s["sensor"]: s for s in q.sensors(now=1030.0)}
    assert health["edge-a"]["packets_per_s"] == 60.0  # (1000 - 400) / (1020 - 1010)
    assert health["edge-b"]["packets_per_s"] is None and not health["edge-a"]["quiet"]
    assert q.sensors(now=1020.0 + 121)[0]["quiet"]
    q.close()


def test_per_sensor_roll_ups_follow_the_sensor(store_url, tmp_path):
    sink = store_sink(store_url, tmp_path)
    for sensor in ("edge-a", "edge-b", "edge-b"):
        sink.write(engine_records(tmp_path, sensor)[0])
    sink.close()
    q = open_store(store_url)
    assert q._rows("SELECT sensor, sum(count) AS n FROM sensor_minutes GROUP BY 1 ORDER BY 1") == \
        [{"sensor": "edge-a", "n": 3}, {"sensor": "edge-b", "n": 6}]
    assert {(r["sensor"], r["type"]): r["count"] for r in q._rows("SELECT * FROM source_activity")
            if r["src_ip"] == "10.9.8.7"} == {("edge-a", "port_scan"): 1, ("edge-b", "port_scan"): 2}
    q.close()


def test_sqlite_retention_triggers_take_deleted_alerts_out_of_the_per_sensor_roll_ups(tmp_path):
    path = str(tmp_path / "ww.db")
    sink = store_sink(path, tmp_path)
    sink.write(engine_records(tmp_path, "edge-a")[0])
    sink.close()
    c = sqlite3.connect(path)
    c.execute("DELETE FROM alerts WHERE src_ip = '10.9.8.7'")
    c.commit()
    assert c.execute("SELECT count FROM source_activity WHERE src_ip = '10.9.8.7'").fetchall() == [(0,)]
    assert c.execute("SELECT count FROM sensor_sources WHERE src_ip = '10.9.8.7'").fetchall() == [(0,)]
    assert c.execute("SELECT sum(count) FROM sensor_minutes").fetchone() == (2,)


def test_the_scripts_name_the_tables_both_stores_share():
    for table in ("sensor_minutes", "source_activity", "sensors"):
        assert f"CREATE TABLE {table} " in ROLLUP_TABLES
    assert "CREATE TABLE sensor_sources" in SENSOR_SOURCES
    assert SENSOR_UPSERT.count("?") == 4 and "prev_record = sensors.record" in SENSOR_UPSERT
