"""store/deferred.py: a storm's per-source roll-ups are added in bulk after it, and then equal
counts computed from the alerts themselves (not from the store), through retention too."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time

import pytest
from store_fixtures import insert_as_before_flow_ids, sqlite_at_version

from wirewatch.craft import BASE_TS
from wirewatch.store import deferred
from wirewatch.store.deferred import INLINE_MAX, catch_up_sources, status
from wirewatch.store.schema import MIGRATIONS, migrate
from wirewatch.store.search import catch_up
from wirewatch.store.sqlite_sink import SqliteSink


def alert(i: int) -> dict:
    """Attackers repeat (i % 700), two sensors, every 13th alert muted, every 11th names
    another address as its attacker (EVE alert.source.ip), times out of order within a batch."""
    src = f"10.1.{i % 700 // 250}.{i % 250 + 1}"
    a = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE_TS + (i * 7919) % 5000)) + f".{i % 1000:06d}+0000",
         "event_type": "alert", "src_ip": src, "src_port": 1000 + i % 50000, "dest_ip": "192.168.1.1",
         "dest_port": 4444, "proto": "TCP", "host": f"edge-{i % 2}",
         "alert": {"action": "allowed", "gid": 1, "signature_id": 9000008, "rev": 1,
                   "signature": "WIREWATCH suspicious port", "category": "Misc activity", "severity": 2},
         "type": ("suspicious_port", "port_scan", "syn_flood")[i % 3], "message": f"alert {i} from {src}",
         "evidence": {"n": i}}
    if i % 13 == 0:
        a["muted"] = 1
    if i % 11 == 0:
        a["alert"]["source"] = {"ip": f"203.0.113.{i % 5}"}
    return a


def expected(records: list[dict]) -> dict[str, dict]:
    """The three source roll-ups, counted from the alert records in Python."""
    act: dict[tuple, list] = {}
    for a in records:
        if a.get("muted"):
            continue
        attacker = (a["alert"].get("source") or {}).get("ip") or a["src_ip"]
        ts = dt.datetime.fromisoformat(a["timestamp"]).timestamp()
        v = act.setdefault((attacker, a.get("host", ""), a["type"]), [0, ts, ts])
        v[0] += 1
        v[1], v[2] = min(v[1], ts), max(v[2], ts)
    fleet: dict[str, list] = {}
    per: dict[tuple, list] = {}
    for (ip, s, _), (n, _, last) in act.items():
        for table, key in ((fleet, ip), (per, (s, ip))):
            v = table.setdefault(key, [0, last])
            v[0] += n
            v[1] = max(v[1], last)
    return {"source_activity": {k: tuple(v) for k, v in act.items()},
            "alert_sources": {k: tuple(v) for k, v in fleet.items()},
            "sensor_sources": {k: tuple(v) for k, v in per.items()}}


def found(path: str) -> dict[str, dict]:
    c = sqlite3.connect(path)
    try:
        return {"source_activity": {(ip, s, t): (n, f, last) for ip, s, t, n, f, last in c.execute(
                    "SELECT src_ip, sensor, type, count, first_ts, last_ts FROM source_activity WHERE count > 0")},
                "alert_sources": {ip: (n, last) for ip, n, last in c.execute(
                    "SELECT src_ip, count, last_ts FROM alert_sources WHERE count > 0")},
                "sensor_sources": {(s, ip): (n, last) for s, ip, n, last in c.execute(
                    "SELECT sensor, src_ip, count, last_ts FROM sensor_sources WHERE count > 0")}}
    finally:
        c.close()


def pending(path: str) -> int:
    c = sqlite3.connect(path)
    try:
        return int(status(c)["pending"])
    finally:
        c.close()


def counts_only(rollups: dict[str, dict]) -> dict[str, dict]:
    """Counts without times (retention keeps counts exact; a last time may name a deleted alert)."""
    return {table: {k: v[0] for k, v in rows.items()} for table, rows in rollups.items()}


def test_a_storm_batch_leaves_the_source_rollups_pending_and_catch_up_makes_them_exact(tmp_path):
    path = str(tmp_path / "s.db")
    records = [alert(i) for i in range(3 * 2000)]
    sink = SqliteSink(path)
    for lo in range(0, len(records), 2000):
        sink.write(records[lo:lo + 2000])
    assert pending(path) == 6000 and found(path) == {"source_activity": {}, "alert_sources": {}, "sensor_sources": {}}
    catch_up(path)  # what the dashboard does before it serves: the source roll-ups, then the text index
    assert pending(path) == 0
    assert found(path) == expected(records)
    sink.close()


def test_small_batches_roll_up_inline_and_after_a_storm_drain_it_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(deferred, "WRITER_CHUNK", 1000)
    monkeypatch.setattr("wirewatch.store.sqlite_sink.WRITER_CHUNK", 1000)
    path = str(tmp_path / "s.db")
    records = [alert(i) for i in range(4000)]
    sink = SqliteSink(path)
    sink.write(records[:10])  # ordinary traffic: current at once
    assert pending(path) == 0 and found(path) == expected(records[:10])
    sink.write(records[10:3010])  # a storm's batch
    assert pending(path) == 3000
    sink.write(records[3010:3020])  # the storm is over: each small batch first adds 1,000 of it
    assert pending(path) == 2010
    sink.write_event({"event_type": "stats", "timestamp": records[0]["timestamp"], "stats": {}})  # so does a stats event
    assert pending(path) == 1010
    sink.write(records[3020:3030])
    sink.write(records[3030:3040])
    assert pending(path) == 0 and found(path) == expected(records[:3040])
    sink.close()


def test_close_adds_what_is_pending(tmp_path):
    path = str(tmp_path / "s.db")
    records = [alert(i) for i in range(INLINE_MAX + 1)]
    sink = SqliteSink(path)
    sink.write(records)
    assert pending(path) == INLINE_MAX + 1
    sink.close()
    assert pending(path) == 0 and found(path) == expected(records)


def test_retention_keeps_the_source_rollups_exact_on_both_sides_of_the_pointer(tmp_path):
    path = str(tmp_path / "s.db")
    records = [alert(i) for i in range(3000)]
    sink = SqliteSink(path)
    sink.write(records)
    c = sqlite3.connect(path, isolation_level=None)
    assert catch_up_sources(c, chunk=500, limit=1000) == 1000  # rolled up through id 1000, 2000 pending
    sink._delete_through(2000)  # 1,000 rolled-up alerts and 1,000 pending ones
    assert catch_up_sources(c) == 1000
    assert counts_only(found(path)) == counts_only(expected(records[2000:]))
    c.close()
    sink._delete_through(3000)  # everything: ids start again below the pointer
    sink.write(records[:5])
    assert pending(path) == 0 and counts_only(found(path)) == counts_only(expected(records[:5]))
    sink.close()


def test_a_store_of_schema_11_is_rolled_up_through_its_newest_alert(tmp_path):
    """Migration 12 trusts the roll-ups an inline writer kept, and retention still takes
    those alerts out of them."""
    path = str(tmp_path / "s.db")
    c = sqlite_at_version(path, 11)
    from wirewatch.store.rollups import upserts
    records = [alert(i) for i in range(300)]
    rollup = insert_as_before_flow_ids(c, records)  # as schema 11's writer stored them
    for sql, args in upserts(rollup, "max", "min"):
        if args:
            c.executemany(sql, args)
    assert migrate(c) == len(MIGRATIONS) == 16
    assert status(c) == {"rolled_up_through": 300, "pending": 0, "complete": True}
    c.close()
    sink = SqliteSink(path)
    sink._delete_through(100)
    sink.close()
    assert counts_only(found(path)) == counts_only(expected(records[100:]))


@pytest.mark.parametrize("n", [INLINE_MAX + 500])
def test_the_dashboard_shows_a_storms_top_sources(tmp_path, n):
    from dashboard_fixtures import TOKEN, login

    from wirewatch.web import create_app
    path = str(tmp_path / "s.db")
    records = [alert(i) for i in range(n)]
    sink = SqliteSink(path)
    sink.write(records)
    assert pending(path) == n
    client = create_app(path, TOKEN).test_client()
    login(client)
    top = client.get("/api/overview").get_json()["top_sources"]
    want = sorted(expected(records)["alert_sources"].items(), key=lambda kv: -kv[1][0])
    assert [(t["src_ip"], t["count"]) for t in top] and all(expected(records)["alert_sources"][t["src_ip"]][0] ==
                                                           t["count"] for t in top)
    assert top[0]["count"] == want[0][1][0]
    sink.close()
