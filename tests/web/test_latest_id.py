"""An empty page's `latest_id` is read before the page: the alerts page then polls for alerts
after it (alerts.js), so a match a sensor writes while the page is read is still listed.
Read after the page, latest_id already counted that alert and the poll passed over it."""

from __future__ import annotations

from conftest import store_sink
from dashboard_fixtures import TOKEN, fake_alert

from wirewatch.store import queries
from wirewatch.web import create_app


def test_a_match_written_while_an_empty_page_is_read_is_found_by_the_poll(store_url, tmp_path, monkeypatch):
    sink = store_sink(store_url, tmp_path)
    sink.write([fake_alert(i) for i in range(50)])  # port_scan and host_sweep, no syn_flood
    real = queries.Queries.alerts_page

    def page_then_written(self, *args, **kwargs):
        got = real(self, *args, **kwargs)
        sink.write([fake_alert(50, type="syn_flood")])  # the sensor, just after the page's read
        return got
    monkeypatch.setattr(queries.Queries, "alerts_page", page_then_written)
    client = create_app(store_url, TOKEN).test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        first = client.get("/api/alerts?type=syn_flood", headers=headers).get_json()
        monkeypatch.setattr(queries.Queries, "alerts_page", real)
        poll = client.get(f"/api/alerts?type=syn_flood&after={first['latest_id']}&limit=100", headers=headers).get_json()
    finally:
        sink.close()
    assert first["alerts"] == [] and first["latest_id"] == 50
    assert [a["id"] for a in poll["alerts"]] == [51] and poll["alerts"][0]["type"] == "syn_flood"
