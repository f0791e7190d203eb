"""The dashboard shows an escalated alert as such: its message says what grew, and its detail page
names the alert it outgrew (stored from a real run: a one-source SYN flood, then 5,000 forged
sources against the same victim inside the cooldown)."""

from __future__ import annotations

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
    floods = [a for a in alerts if a["type"] == "syn_flood"]
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
