"""The dashboard shows an escalated alert as such: its message says what grew, and its detail page
names the alert it outgrew (stored from a real run: a one-source SYN flood, then 5,000 forged
sources against the same victim inside the cooldown); an update is shown as one, linked to the
alert it updates."""

from __future__ import annotations

from conftest import store_sink
from dashboard_fixtures import TOKEN, login
from scapy.layers.inet import IP, TCP

from wirewatch import config
from wirewatch.capture.pcapfile import read_batches
from wirewatch.craft import BASE_TS, eth, write_pcap, write_syn_storm
from wirewatch.engine import Engine
from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.web import create_app


def test_an_escalated_alert_names_the_one_it_outgrew(tmp_path):
    one = write_pcap(str(tmp_path / "one.pcap"), [
        (BASE_TS + i / 600, eth(IP(src="10.1.0.1", dst="10.0.0.2") / TCP(sport=1024 + i, dport=80, flags="S")))
        for i in range(600)])
    many = write_syn_storm(str(tmp_path / "many.pcap"), 5_000, "10.0.0.2", 8080, t0=BASE_TS + 12, duration=2.0)
    engine = Engine(config.build(), [])  # one engine over both files, as `read one many` does
    alerts = []
    for path in (one, many):
        for raw in read_batches(path, 4096):
            alerts += engine.feed(raw)
    alerts += engine.flush()
    floods = [a for a in alerts if a["type"] == "syn_flood" and "update_of" not in a]
    assert len(floods) == 2 and "escalated_from" in floods[1]
    db = str(tmp_path / "ww.db")
    sink = SqliteSink(db)
    sink.write(alerts)
    sink.close()
    client = login(create_app(db, TOKEN).test_client())
    rows = client.get("/api/alerts?type=syn_flood").get_json()["alerts"]
    escalated = [a for a in rows if "[escalated: distinct_sources 1 -> " in a["message"]]
    assert len(escalated) == 1
    html = client.get(f"/alerts/{escalated[0]['id']}").get_data(as_text=True)
    assert "Escalated from" in html and floods[0]["message"] in html and floods[0]["timestamp"] in html


def test_an_update_is_shown_as_one_linked_to_the_alert_it_updates(tmp_path, store_url):
    """A random-source flood growing after its alert (a real run): its update (`update_of`) is
    marked "update of" on the alert list and names and links the alert it updates on its page;
    /alerts/ID/updated leads there; an alert that is no update has neither (SQLite and PostgreSQL)."""
    storm = write_syn_storm(str(tmp_path / "grow.pcap"), 8_000, "10.0.0.2", 8080, duration=8.0)
    engine = Engine(config.build(), [])
    alerts = []
    for raw in read_batches(storm, 4096):
        alerts += engine.feed(raw)
    alerts += engine.flush() + engine.alerts.finish()  # the run-end tally too
    first = next(a for a in alerts if a["type"] == "syn_flood")
    assert "update_of" not in first and any("update_of" in a for a in alerts)
    db = store_url
    sink = store_sink(db, tmp_path)
    sink.write(alerts)
    sink.close()
    client = login(create_app(db, TOKEN).test_client())
    rows = client.get("/api/alerts?type=syn_flood").get_json()["alerts"]
    original = next(r for r in rows if r["message"] == first["message"])
    updates = [r for r in rows if "update_of" in r]
    assert updates and "update_of" not in original
    for u in updates:
        assert u["update_of"] == {"timestamp": first["timestamp"], "message": first["message"]}
        html = client.get(f"/alerts/{u['id']}").get_data(as_text=True)
        assert "Update of" in html and f'href="/alerts/{original["id"]}"' in html and first["timestamp"] in html
        r = client.get(f"/alerts/{u['id']}/updated")
        assert r.status_code == 302 and r.headers["Location"].endswith(f"/alerts/{original['id']}")
    assert "Update of" not in client.get(f"/alerts/{original['id']}").get_data(as_text=True)
    r = client.get(f"/alerts/{original['id']}/updated")
    assert r.status_code == 404 and "not an update" in r.get_data(as_text=True)
    js = client.get("/static/common.js").get_data(as_text=True)
    assert "update_of" in js and "/updated" in js and "innerHTML" not in js
