"""store/rollups.py: a batch's rows and what it adds to every roll-up, aggregated once per
key; the roll-up tables it fills equal a count over the stored alerts, in both stores."""

from __future__ import annotations

import json

import pytest
from conftest import store_sink
from dashboard_fixtures import fake_alert
from store_fixtures import SCANNER, SCANNER6, SWEEPER, engine_records

from wirewatch.store.rollups import prepare, sensor_of, upserts
from wirewatch.store.tables import WRITTEN


def test_rows_follow_the_written_column_order(tmp_path):
    alerts, _ = engine_records(tmp_path)
    rows, _ = prepare(alerts, ["u1", None, "u3"])
    assert [len(r) for r in rows] == [len(WRITTEN)] * 3
    first = dict(zip(WRITTEN, rows[0]))
    assert (first["type"], first["src_ip"], first["sensor"], first["attacker"], first["uid"]) == \
        ("port_scan", SCANNER, "edge-a", SCANNER, "u1")
    assert json.loads(first["record"]) == alerts[0] and first["muted"] == 0
    assert first["src_key"].endswith("0a090807") and dict(zip(WRITTEN, rows[1]))["uid"] is None


def test_one_entry_per_key_and_muted_alerts_only_count_hits(tmp_path):
    alerts, _ = engine_records(tmp_path)
    again, _ = engine_records(tmp_path, "edge-b")
    muted = dict(again[0], muted=7)
    _, r = prepare(alerts + again[1:] + [muted], [None] * 6)
    assert r.hits == {7: 1}
    assert r.types() == {("edge-a", "port_scan"): 2, ("edge-a", "host_sweep"): 1,
                         ("edge-b", "host_sweep"): 1, ("edge-b", "port_scan"): 1}
    assert {ip: n for ip, (n, _) in r.sources().items()} == {SCANNER: 1, SWEEPER: 2, SCANNER6: 2}
    assert r.sensor_sources()[("edge-b", SWEEPER)][0] == 1 and ("edge-b", SCANNER) not in r.sensor_sources()
    assert sum(r.minutes().values()) == 5  # the muted one is not in the charts


def test_an_attacker_is_alert_source_ip_and_keeps_first_and_last_time():
    from wirewatch.craft import BASE_TS
    a, b = fake_alert(1), fake_alert(5)  # port scans 4 s apart from two addresses
    b["alert"] = dict(b["alert"], source={"ip": a["src_ip"]})  # b names a's address as its attacker
    _, r = prepare([b, a], [None, None])
    assert r.activity == {(a["src_ip"], "", "port_scan"): [2, BASE_TS + 1, BASE_TS + 5]}
    assert r.sources() == {a["src_ip"]: [2, BASE_TS + 5]}
    assert sensor_of({"host": "edge-a"}) == "edge-a" and sensor_of({}) == ""


def test_upserts_name_the_dialects_max_and_min():
    _, r = prepare([fake_alert(1)], [None])
    sql = "\n".join(s for s, _ in upserts(r, "greatest", "least"))
    assert "greatest(alert_sources.last_ts" in sql and "least(source_activity.first_ts" in sql and "max(" not in sql


@pytest.mark.parametrize("batches", [1, 3])
def test_the_roll_up_tables_equal_a_count_of_the_stored_alerts(store_url, tmp_path, batches):
    records = [fake_alert(i, host=f"edge-{i % 2}") for i in range(60)]
    records += engine_records(tmp_path)[0]
    sink = store_sink(store_url, tmp_path)
    step = -(-len(records) // batches)
    for i in range(0, len(records), step):
        sink.write(records[i:i + step])
    sink.close()
    from wirewatch.store.queries import open_store
    q = open_store(store_url)
    assert q._rows("SELECT type, count FROM alert_types ORDER BY type") == \
        q._rows("SELECT type, count(*) AS count FROM alerts GROUP BY type ORDER BY type")
    assert q._rows("SELECT sensor, type, count FROM sensor_types ORDER BY 1, 2") == \
        q._rows("SELECT sensor, type, count(*) AS count FROM alerts GROUP BY 1, 2 ORDER BY 1, 2")
    assert q._rows("SELECT src_ip, count FROM alert_sources ORDER BY 1") == \
        q._rows("SELECT attacker AS src_ip, count(*) AS count FROM alerts GROUP BY 1 ORDER BY 1")
    assert q._rows("SELECT sensor, src_ip, count FROM sensor_sources ORDER BY 1, 2") == \
        q._rows("SELECT sensor, attacker AS src_ip, count(*) AS count FROM alerts GROUP BY 1, 2 ORDER BY 1, 2")
    assert int(q._value("SELECT sum(count) AS n FROM sensor_minutes")) == len(records)
    q.close()
