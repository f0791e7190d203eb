"""The alert list API when a filter cannot be read by an index walk (store/queries.py's
bounded plans): the answer says what was searched (`bounded`) and `next_before` continues
from there, so paging on lists every match, on SQLite and PostgreSQL."""

from __future__ import annotations

from conftest import store_sink
from dashboard_fixtures import BASE_TS, TOKEN, fake_alert

from wirewatch.store import queries
from wirewatch.web import create_app


def test_a_bounded_answer_says_what_it_searched_and_paging_on_finds_the_rest(store_url, tmp_path, monkeypatch):
    monkeypatch.setitem(queries.WINDOW, "sqlite", 50)
    monkeypatch.setitem(queries.WINDOW, "postgresql", 50)
    monkeypatch.setitem(queries.SORT_CAP, "sqlite", 20)
    monkeypatch.setitem(queries.SORT_CAP, "postgresql", 20)
    sink = store_sink(store_url, tmp_path)
    # 30 alerts of 10.9.0.0/16 among the oldest 100 of 300, the rest 10.1.x.x
    sink.write([fake_alert(i, src_ip=f"10.9.0.{i + 1}" if i < 100 and i % 3 == 0 else f"10.1.0.{i % 250 + 1}")
                for i in range(300)])
    sink.close()
    client = create_app(store_url, TOKEN).test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.get("/api/alerts?src=10.9.0.0/16&limit=10", headers=auth)
    assert r.status_code == 200
    body = r.get_json()
    assert body["alerts"] == [] and body["bounded"]["searched_from"] == 251 and body["bounded"]["searched_below"] == 301
    assert body["next_before"] == 251 and "were searched" in body["bounded"]["reason"]
    seen: list[int] = []
    before = body["next_before"]
    for _ in range(20):
        body = client.get(f"/api/alerts?src=10.9.0.0/16&limit=10&before={before}", headers=auth).get_json()
        seen += [a["id"] for a in body["alerts"]]
        before = body["next_before"]
        if before is None:
            break
    assert seen == [i + 1 for i in range(99, -1, -1) if i % 3 == 0]
    body = client.get(f"/api/alerts?src=10.1.0.0/16&since={BASE_TS}&limit=10", headers=auth).get_json()
    assert "bounded" not in body and len(body["alerts"]) == 10 and body["next_before"] == body["alerts"][-1]["id"]
