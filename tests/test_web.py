"""Dashboard through Flask's test client over a temporary store."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import CORPUS, PURE_NUMPY
from dashboard_fixtures import fake_alert, store_with_alerts

from wirewatch import config
from wirewatch.craft import BASE_TS
from wirewatch.engine import Engine
from wirewatch.store.admin import Triage
from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.web import create_app

TOKEN = "test-token-123"
XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>']


@pytest.fixture
def db(tmp_path):
    return store_with_alerts(str(tmp_path / "ww.db"), 120)


@pytest.fixture
def client(db):
    app = create_app(db, TOKEN)
    c = app.test_client()
    r = c.get(f"/login?token={TOKEN}")
    assert r.status_code == 302
    return c


def csrf(client) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)


def test_every_route_needs_auth(db):
    c = create_app(db, TOKEN).test_client()
    for url in ("/", "/alerts", "/alerts/1", "/mutes", "/vendor/chart.umd.js"):
        r = c.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"], url
    for url in ("/api/alerts", "/api/alerts/1", "/api/overview", "/api/mutes", "/metrics"):
        assert c.get(url).status_code == 401, url
    for url in ("/api/alerts/ack", "/api/mutes", "/api/mutes/1/end", "/logout"):
        assert c.post(url, json={}).status_code in (302, 401), url
    assert c.get("/login?token=wrong").status_code == 401
    assert c.get("/api/alerts", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_security_headers(db):
    c = create_app(db, TOKEN).test_client()
    login = c.get(f"/login?token={TOKEN}")  # the response that sets the session cookie
    cookie = login.headers["Set-Cookie"]  # (the page after it sets none: a default made this pass)
    assert login.status_code == 302 and "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
    r = c.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in r.get_data(as_text=True)


def test_filters_and_keyset_pagination(client):
    page = client.get("/api/alerts?limit=50").get_json()
    assert len(page["alerts"]) == 50 and page["alerts"][0]["id"] == 120
    page2 = client.get(f"/api/alerts?limit=50&before={page['next_before']}").get_json()
    assert page2["alerts"][0]["id"] == 70
    ids = [a["id"] for a in page["alerts"] + page2["alerts"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 100
    assert {a["type"] for a in client.get("/api/alerts?type=port_scan&limit=500").get_json()["alerts"]} == {"port_scan"}
    by_cidr = client.get("/api/alerts?src=10.0.0.0/30&limit=500").get_json()["alerts"]
    assert sorted(a["src_ip"] for a in by_cidr) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert len(client.get("/api/alerts?port=81&limit=500").get_json()["alerts"]) == 40
    assert [a["id"] for a in client.get("/api/alerts?q=alert 17&limit=500").get_json()["alerts"]] == [18]
    since = BASE_TS + 100
    assert len(client.get(f"/api/alerts?since={since}&limit=500").get_json()["alerts"]) == 20
    assert client.get("/api/alerts?src=not-an-ip").status_code == 400
    assert client.get("/api/alerts?port=x").get_json()["error"] == "port: not a number: 'x'"
    newer = client.get("/api/alerts?after=115").get_json()["alerts"]
    assert [a["id"] for a in newer] == [120, 119, 118, 117, 116]


def test_acknowledge_needs_csrf_and_works_in_bulk(client):
    assert client.post("/api/alerts/ack", json={"ids": [1, 2]}).status_code == 403
    assert client.post("/api/alerts/ack", json={"ids": [1, 2]}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    r = client.post("/api/alerts/ack", json={"ids": [1, 2, 3]}, headers={"X-CSRF-Token": csrf(client)})
    assert r.get_json() == {"updated": 3}
    acked = client.get("/api/alerts?acknowledged=1&limit=500").get_json()["alerts"]
    assert sorted(a["id"] for a in acked) == [1, 2, 3]


def test_overview_api_and_metrics(client):
    o = client.get("/api/overview").get_json()
    assert o["total_alerts"] == 120 and o["alerts_by_type"] == {"host_sweep": 60, "port_scan": 60}
    assert sum(p["alerts"] for p in o["alerts_per_minute"]) == 120
    m = client.get("/metrics").get_data(as_text=True)
    assert 'wirewatch_alerts_total{type="port_scan"} 60' in m


def test_packet_controlled_text_renders_inert(db, client):
    sink = SqliteSink(db)
    sink.write([fake_alert(500 + i, message=f"scan {x}", type="port_scan", proto=x,
                            evidence={"sample_ports": [x], "note": x, x: 1}) for i, x in enumerate(XSS)])
    sink.close()
    newest = client.get("/api/alerts?limit=2").get_json()["alerts"]
    for a in newest:
        html = client.get(f"/alerts/{a['id']}").get_data(as_text=True)
        for x in XSS:
            assert x not in html
        assert "&lt;script&gt;" in html or "&#34;&gt;&lt;img" in html or "&lt;img" in html
    # the table and charts are filled by script from JSON with textContent / canvas
    js = client.get("/static/common.js").get_data(as_text=True) + client.get("/static/alerts.js").get_data(as_text=True)
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js
    assert json.loads(client.get("/api/alerts?limit=1").get_data(as_text=True))["alerts"][0]["message"] == f"scan {XSS[1]}"


def test_mutes_silence_a_running_engine_but_count(tmp_path, client, db):
    r = client.post("/api/mutes", json={"type": "port_scan", "cidr": "10.10.0.0/24", "hours": 2},
                    headers={"X-CSRF-Token": csrf(client)})
    assert r.status_code == 201
    assert client.post("/api/mutes", json={"type": "port_scan", "cidr": "nope"},
                       headers={"X-CSRF-Token": csrf(client)}).status_code == 400
    host_bits = client.post("/api/mutes", json={"type": "port_scan", "cidr": "10.10.0.66/24"},
                            headers={"X-CSRF-Token": csrf(client)})
    assert host_bits.status_code == 400 and "10.10.0.0/24 for the /24" in host_bits.get_data(as_text=True)
    sink = SqliteSink(db)
    log = tmp_path / "a.json"
    from wirewatch.capture.pcapfile import read_batches
    from wirewatch.sinks.jsonl import JsonlSink
    engine = Engine(config.build(), [sink, JsonlSink(str(log))])
    for raw in read_batches(str(CORPUS / "dev01_nmap_syn_top100.pcap")):
        engine.feed(raw)
    engine.close()
    written = [json.loads(l) for l in log.read_text().splitlines()]
    # the scanner's probe of watched port 23 is part of its (muted) scan alert, not an alert of its own
    assert {a["type"] for a in written} == set()
    muted = client.get("/api/alerts?type=port_scan&src=10.10.0.66").get_json()["alerts"]
    assert len(muted) == 1 and muted[0]["muted"] == 1
    assert client.get("/api/mutes").get_json()["mutes"][0]["hits"] == 1
    assert engine.summary()["muted"] == 1


def test_new_mute_reaches_running_sensor_within_seconds(tmp_path):
    path = str(tmp_path / "m.db")
    now = [1000.0]
    sink = SqliteSink(path, clock=lambda: now[0])
    a = fake_alert(1, src_ip="10.9.9.9")
    assert not sink.filter([dict(a)])[0].get("muted")
    Triage(path).mute("port_scan", "10.9.9.0/24", time.time() + 60)
    now[0] += 1.0
    assert not sink.filter([dict(a)])[0].get("muted")  # cached for MUTE_REFRESH_S
    now[0] += 2.0
    assert sink.filter([dict(a)])[0].get("muted")


def test_retention_by_age_and_size(tmp_path):
    path = str(tmp_path / "r.db")
    now = [BASE_TS]
    sink = SqliteSink(path, retention_days=1, clock=lambda: now[0])
    sink.write([fake_alert(i) for i in range(10)])
    now[0] += 2 * 86400  # retention counts from when an alert was stored
    sink.enforce_retention()
    assert sink.conn.execute("select count(*) from alerts").fetchone()[0] == 0
    sink = SqliteSink(str(tmp_path / "s.db"), max_mb=1, clock=lambda: BASE_TS)
    big = "x" * 2000
    for chunk in range(10):
        sink.write([fake_alert(chunk * 100 + i, message=big) for i in range(100)])
    sink.enforce_retention()
    used = sink.conn.execute("select count(*) from alerts").fetchone()[0]
    assert 0 < used < 1000


def test_schema_is_versioned(tmp_path):
    path = str(tmp_path / "v.db")
    SqliteSink(path).close()
    import sqlite3

    from wirewatch.store.schema import MIGRATIONS
    assert sqlite3.connect(path).execute("select version from schema_version").fetchone()[0] == len(MIGRATIONS)
    SqliteSink(path).close()  # reopening migrates nothing and keeps data


def test_read_fills_store_for_dashboard(tmp_path):
    from conftest import cli
    db = tmp_path / "c.db"
    r = cli("read", str(CORPUS / "dev15_icmp_ping_flood.pcap"), "--db", str(db), "--logfile", "", "--quiet")
    assert r.returncode == 0
    c = create_app(str(db), TOKEN).test_client()
    o = c.get("/api/overview", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    assert o["alerts_by_type"] == {"traffic_burst": 1} and o["health"]["packets"] == 10004
    assert o["top_talkers"][0]["src_ip"] in ("10.10.0.66", "10.10.0.13")


def test_analysed_capture_charts_its_own_packet_rate(tmp_path):
    """`wirewatch read --db` leaves one stats event: the overview's packets/s comes from the
    capture's packet-time timeline (the dashboard chart is not empty after `make sample`)."""
    from conftest import cli

    from wirewatch.store.queries import Store

    db = tmp_path / "w.db"
    pcap = CORPUS / "dev15_icmp_ping_flood.pcap"
    r = cli("read", str(pcap), "--db", str(db), "--logfile", "", "--format", "json")
    assert r.returncode == 0, r.stderr
    packets = json.loads(r.stdout)["packets"]
    store = Store(str(db))
    assert store.latest_stats()["stats"]["compiled_hot_path"] is not PURE_NUMPY  # WIREWATCH_PURE_NUMPY=1: the reference
    rates = store.overview()["packets_per_s"]
    assert len(rates) >= 2
    width = rates[1]["t"] - rates[0]["t"]
    assert round(sum(p["pps"] * width for p in rates)) == packets
    assert max(p["pps"] for p in rates) > 100  # a ping flood
    web = create_app(str(db), TOKEN).test_client()
    metrics = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    assert f"wirewatch_packets_total {packets}" in metrics and f"wirewatch_compiled_hot_path {int(not PURE_NUMPY)}" in metrics


def test_timeline_stays_bounded_and_keeps_every_packet():
    import numpy as np

    from wirewatch.timeline import Timeline

    t = Timeline(bins=8)
    t.add(np.array([100.2, 100.7, 101.5]))
    assert [r["pps"] for r in t.rates()] == [2.0, 1.0]
    t.add(np.array([130.0, 99.0]))  # 30 s later: 8 bins of 4 s cover it; and an earlier straggler
    rates = t.rates()
    width = rates[1]["t"] - rates[0]["t"]
    assert width == 4.0 and len(t.counts) == 8
    assert sum(r["pps"] * width for r in rates) == 5


def test_metrics_give_the_highest_near_miss_fraction_per_detector(tmp_path):
    """`read --db` of a capture where one source probed 14 of 20 ports: /metrics, from the stored
    stats event, says 0.7 for port_scan and 0 for every other detector, labelled with the sensor."""
    from conftest import cli
    from crafted import scan

    from wirewatch.craft import write_pcap
    from wirewatch.detect import registry

    db = str(tmp_path / "ww.db")
    r = cli("read", write_pcap(str(tmp_path / "n.pcap"), scan(4, 14)), "--db", db, "--sensor", "lab1",
            "--logfile", "", "--quiet")
    assert r.returncode == 0, r.stderr
    c = create_app(db, TOKEN).test_client()
    m = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    got = dict(re.findall(r'^wirewatch_near_miss_fraction\{detector="([a-z_]+)",sensor="lab1"\} (\S+)$', m, re.M))
    assert got == {name: "0.7" if name == "port_scan" else "0" for name in registry.names()}


def test_vendor_dir_finds_chart_js_and_an_override_holding_it_comes_first(tmp_path, monkeypatch):
    from wirewatch.web import vendor_dir
    monkeypatch.delenv("WIREWATCH_NODE_MODULES", raising=False)
    found = vendor_dir()
    assert found is not None and (found / "chart.js" / "dist" / "chart.umd.js").exists()  # make setup's npm install
    monkeypatch.setenv("WIREWATCH_NODE_MODULES", str(tmp_path))
    assert vendor_dir() == found  # an override without Chart.js: the checkout's node_modules still serve
    (tmp_path / "chart.js" / "dist").mkdir(parents=True)
    (tmp_path / "chart.js" / "dist" / "chart.umd.js").write_text("/* Chart */")
    assert vendor_dir() == tmp_path


def test_token_matches_needs_the_whole_token():
    from wirewatch.web import token_matches
    assert token_matches(TOKEN, TOKEN)
    assert not any(token_matches(TOKEN, t) for t in (None, "", TOKEN[:-1], TOKEN + "4", TOKEN.upper()))


def test_each_request_takes_a_store_from_the_pool_and_gives_it_back(db):
    app = create_app(db, TOKEN)
    pool = app.extensions["store_pool"]
    c = app.test_client()
    c.get(f"/login?token={TOKEN}")
    assert pool.idle.qsize() == 1  # the login request's store, back in the pool
    first = pool.idle.queue[0]
    for _ in range(3):
        assert c.get("/api/alerts").status_code == 200
    assert pool.idle.qsize() == 1 and pool.idle.queue[0] is first  # one store, reused
