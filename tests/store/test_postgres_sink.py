"""store/postgres_sink.py: a sensor's writes into the shared PostgreSQL store: every alert
and stats event once (uids), the roll-ups, retention, and the spool while the database is down."""

from __future__ import annotations

import io
from types import SimpleNamespace

import psycopg
from store_fixtures import SCANNER, engine_records

from wirewatch.store.postgres_sink import PostgresSink, postgres_spool
from wirewatch.store.queries import AlertFilter, PostgresStore


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as c:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_alerts_and_stats_are_stored_with_their_roll_ups(pg_url, tmp_path):
    alerts, stats = engine_records(tmp_path)
    sink = PostgresSink(pg_url, str(tmp_path / "spool.jsonl"))
    sink.write(sink.filter(alerts))
    sink.write_event(stats)
    sink.close()
    q = PostgresStore(pg_url)
    stored = q.alerts(AlertFilter())
    assert sorted(a["src_ip"] for a in stored) == sorted(a["src_ip"] for a in alerts)
    assert {a["sensor"] for a in stored} == {"edge-a"}
    assert q.counts_by_type() == {"port_scan": 2, "host_sweep": 1}
    assert q.sensors()[0]["packets"] == stats["stats"]["decoder"]["pkts"]
    assert count(pg_url, "stats") == 1 and count(pg_url, "alerts WHERE uid IS NULL") == 0
    q.close()


def test_a_retry_of_a_batch_the_database_already_has_stores_nothing_twice(pg_url, tmp_path):
    alerts, _ = engine_records(tmp_path)
    sink = PostgresSink(pg_url, str(tmp_path / "spool.jsonl"))
    stamped = sink._stamp(alerts)
    entries = [SimpleNamespace(record=r, uid=None) for r in stamped]
    sink._store(entries)
    sink._store(entries)  # the COMMIT reached the server, its answer did not reach us: the retry
    sink.close()
    assert count(pg_url, "alerts") == len(alerts) and count(pg_url, "alert_types WHERE type = 'port_scan' AND count = 2") == 1


def test_while_the_database_is_down_records_wait_in_the_spool(pg_url, postgres, tmp_path):
    alerts, stats = engine_records(tmp_path)
    log = io.StringIO()
    sink = PostgresSink(pg_url, str(tmp_path / "spool.jsonl"), log=log)
    postgres.stop("fast")
    try:
        sink.write(alerts)
        assert sink.spool.pending == len(alerts)
    finally:
        postgres.start()
    sink.write_event(stats)  # the database answers again: the spool first, in order, then this
    sink.close()
    assert count(pg_url, "alerts") == len(alerts) and count(pg_url, "stats") == 1 and sink.spool.pending == 0


def test_retention_deletes_by_insertion_time_and_keeps_the_roll_ups_true(pg_url, tmp_path):
    alerts, _ = engine_records(tmp_path)
    sink = PostgresSink(pg_url, str(tmp_path / "spool.jsonl"), retention_days=1)
    sink.write(alerts)
    sink.enforce_retention()
    assert count(pg_url, "alerts") == 3  # inserted just now, kept
    with psycopg.connect(pg_url) as c:  # the scanner's alert was inserted two days ago
        c.execute("UPDATE alerts SET inserted = inserted - 2 * 86400 WHERE src_ip = %s", (SCANNER,))
    sink.enforce_retention()
    sink.close()
    q = PostgresStore(pg_url)
    left = {a["src_ip"] for a in alerts} - {SCANNER}
    assert {a["src_ip"] for a in q.alerts(AlertFilter())} == left
    assert q.counts_by_type() == {"port_scan": 1, "host_sweep": 1}
    assert {s["src_ip"] for s in q.overview()["top_sources"]} == left
    assert sum(m["alerts"] for m in q.overview()["alerts_per_minute"]) == 2
    q.close()


def test_each_sensor_name_has_its_own_spool_file(tmp_path):
    cfg = SimpleNamespace(general=SimpleNamespace(sensor="edge/a b"), store=SimpleNamespace(state_dir=str(tmp_path)))
    assert postgres_spool(cfg) == str(tmp_path / "spool-edge_a_b.jsonl")
