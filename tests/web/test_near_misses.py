"""The overview's near-miss panel through Flask's test client, over SQLite and a real
PostgreSQL server: per sensor, the sources at >= 50 % of a threshold in its latest stats
record (`stats.near_misses`), highest first, only well-formed entries, a hostile value kept
as data (the page adds it with textContent)."""

from __future__ import annotations

import pytest
from conftest import store_sink
from dashboard_fixtures import TOKEN, login
from near_miss_fixtures import NEAR_MISSES, near_miss_capture, stats_event

from wirewatch.craft import BASE_TS
from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.web import create_app

HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
BROKEN = [  # dropped: no text, a fraction outside [0.5, 1), not a number, not an entry
    {"detector": "port_scan", "src_ip": "10.9.9.1", "fraction": 0.9},
    {"detector": "port_scan", "text": "at the threshold is an alert", "fraction": 1.0},
    {"detector": "port_scan", "text": "far below", "fraction": 0.3},
    {"detector": "port_scan", "text": "text fraction", "fraction": "0.9"},
    {"detector": "port_scan", "text": "bool fraction", "fraction": True},
    "not an entry", None, 7,
]


@pytest.fixture
def store(store_url, tmp_path):
    capture = near_miss_capture(tmp_path / "near.pcap")
    db = store_url
    sink = store_sink(db, tmp_path)
    hostile = dict(NEAR_MISSES[0], src_ip="10.0.0.66", text=HOSTILE, fraction=0.95)
    sink.write_event(stats_event(capture, "edge-a", [{"detector": "port_scan", "text": "older", "fraction": 0.99}]))
    sink.write_event(stats_event(capture, "edge-a", NEAR_MISSES + BROKEN))  # the latest of edge-a
    sink.write_event(stats_event(capture, "edge-b", [hostile]))
    sink.write_event(stats_event(capture, "edge-c", []))
    sink.close()
    return db


def test_each_sensor_shows_its_latest_near_misses_highest_first(store):
    c = login(create_app(store, TOKEN).test_client())
    near = {s["sensor"]: s for s in c.get("/api/overview").get_json()["near_misses"]}
    assert sorted(near) == ["edge-a", "edge-b", "edge-c"]
    assert [n["text"] for n in near["edge-a"]["near_misses"]] == ["10.0.0.7: 12 of 15 hosts in 10 s",
                                                                   "10.0.0.9: 14 of 20 ports in 10 s"]
    assert near["edge-a"]["near_misses"][1] == NEAR_MISSES[0]  # the entry as the sensor wrote it
    assert near["edge-c"]["near_misses"] == [] and near["edge-a"]["updated"] > 0
    one = c.get("/api/overview?sensor=edge-b").get_json()["near_misses"]
    assert [s["sensor"] for s in one] == ["edge-b"] and one[0]["near_misses"][0]["text"] == HOSTILE


def test_a_hostile_value_never_reaches_the_html(store):
    c = login(create_app(store, TOKEN).test_client())
    page = c.get("/").get_data(as_text=True)
    assert 'id="near-list"' in page and "onerror" not in page and "__xss" not in page
    r = c.get("/api/overview")
    assert r.mimetype == "application/json" and HOSTILE in r.get_json()["near_misses"][1]["near_misses"][0]["text"]


def test_a_store_without_stats_events_has_no_near_misses(tmp_path):
    db = str(tmp_path / "empty.db")
    SqliteSink(db).close()
    c = login(create_app(db, TOKEN).test_client())
    assert c.get("/api/overview").get_json()["near_misses"] == []


def test_metrics_skip_malformed_entries_instead_of_failing(tmp_path):
    """/metrics reads the stored entries as defensively as the overview (a 500 before, review)."""
    db = str(tmp_path / "ww.db")
    sink = SqliteSink(db)
    good = {"detector": "host_sweep", "src_ip": "10.0.0.7", "text": "10.0.0.7: 12 of 15 hosts in 10 s", "fraction": 0.8}
    sink.write_event(stats_event(near_miss_capture(tmp_path / "near.pcap"), "edge-a", [good] + BROKEN))
    sink.close()
    r = login(create_app(db, TOKEN).test_client()).get("/metrics")
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert 'wirewatch_near_miss_fraction{detector="host_sweep",sensor="edge-a"} 0.8' in body
    assert 'wirewatch_near_miss_fraction{detector="port_scan",sensor="edge-a"} 0' in body.splitlines()


def test_metrics_give_one_series_per_sensor(store):
    """Each sensor's latest near misses, not only those of the sensor that reported last."""
    body = login(create_app(store, TOKEN).test_client()).get("/metrics").get_data(as_text=True)
    series = [x for x in body.splitlines() if x.startswith("wirewatch_near_miss_fraction{")]
    assert {x.split('sensor="')[1].split('"')[0] for x in series} == {"edge-a", "edge-b", "edge-c"}
    assert 'wirewatch_near_miss_fraction{detector="port_scan",sensor="edge-b"} 0.95' in series
    assert all(x.endswith(" 0") for x in series if 'sensor="edge-c"' in x)


def test_victim_keyed_near_misses_reach_the_panel_and_metrics(tmp_path, store_url):
    """syn_flood's and distributed_scan's near misses have no single source (no `src_ip`): the
    engine's own stats record of a crafted capture, stored in either store, gives the panel
    their victim-naming texts and /metrics their fractions."""
    from conftest import run_file
    from crafted import many, syn

    from wirewatch.craft import write_pcap
    from wirewatch.schema import stats_record

    pkts = [syn(4, many(4, i), "10.0.0.2", 1024 + i, 80, BASE_TS + i * 0.001) for i in range(300)]
    pkts += [syn(4, f"10.0.5.{s + 1}", "10.0.0.3", 40000, 2000 + s * 6 + p, BASE_TS + s * 0.5 + p * 0.01)
             for s in range(3) for p in range(6)]
    capture = write_pcap(str(tmp_path / "victims.pcap"), sorted(pkts, key=lambda p: p[0]))
    alerts, engine = run_file(capture, {"general.sensor": "edge-v"})
    assert alerts == []
    record = stats_record(engine, None, (engine.stats.packets, 0, 0), 1.0, True)
    db = store_url
    sink = store_sink(db, tmp_path)
    sink.write_event(record)
    sink.close()
    c = login(create_app(db, TOKEN).test_client())
    near = c.get("/api/overview").get_json()["near_misses"][0]["near_misses"]
    assert [(n["detector"], n["text"]) for n in near] == [
        ("syn_flood", "to 10.0.0.2 port 80: 300 of 400 incomplete SYNs in 10 s"),
        ("distributed_scan", "to 10.0.0.3: 18 of 30 ports, probed by 3 sources in 30 s")]
    assert all("src_ip" not in n for n in near)
    body = c.get("/metrics").get_data(as_text=True).splitlines()
    assert 'wirewatch_near_miss_fraction{detector="syn_flood",sensor="edge-v"} 0.75' in body
    assert 'wirewatch_near_miss_fraction{detector="distributed_scan",sensor="edge-v"} 0.6' in body
