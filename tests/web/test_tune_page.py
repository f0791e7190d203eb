"""The dashboard's tune page and its API through Flask's test client: saved `wirewatch tune
--db` runs listed newest first, one run's document, bad ids 400 and unknown ids 404 naming
the field, login required."""

from __future__ import annotations

import json

import pytest
from conftest import CORPUS, cli
from dashboard_fixtures import TOKEN, login

from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.web import create_app

HUGE = "9" * 30


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "ww.db")
    docs = []
    for pcaps in (["dev01_nmap_syn_top100.pcap"], ["dev07_nmap_ping_sweep.pcap", "dev11_failed_handshake_rst.pcap"]):
        r = cli("tune", *(str(CORPUS / p) for p in pcaps), "--db", path, "--format", "json", "--no-progress")
        assert r.returncode == 0, r.stderr
        docs.append(json.loads(r.stdout))
    return path, docs


def test_tune_routes_need_login(db):
    c = create_app(db[0], TOKEN).test_client()
    r = c.get("/tune")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    for url in ("/api/tune", "/api/tune/1"):
        assert c.get(url).status_code == 401, url


def test_runs_newest_first_and_one_run_whole(db):
    path, docs = db
    c = login(create_app(path, TOKEN).test_client())
    runs = c.get("/api/tune").get_json()["runs"]
    assert [r["id"] for r in runs] == [2, 1]
    assert runs[0]["captures"] == ["dev07_nmap_ping_sweep.pcap", "dev11_failed_handshake_rst.pcap"]
    assert [r["id"] for r in c.get("/api/tune?limit=1").get_json()["runs"]] == [2]
    run = c.get("/api/tune/1").get_json()
    assert run["document"] == docs[0] and run["packets"] == docs[0]["packets"] and run["created"] > 0
    page = c.get("/tune").get_data(as_text=True)
    assert 'id="thresholds"' in page and "tune.js" in page and 'href="/tune"' in c.get("/").get_data(as_text=True)


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "1.5", "1/2", "%20", HUGE, str(2**63)])
def test_a_bad_run_id_is_400_naming_id(db, raw):
    c = login(create_app(db[0], TOKEN).test_client())
    r = c.get(f"/api/tune/{raw}")
    assert r.status_code == 400, (raw, r.status_code)
    assert r.get_json()["error"].startswith("id:"), r.get_json()


def test_an_unknown_run_is_404_naming_id(db):
    c = login(create_app(db[0], TOKEN).test_client())
    r = c.get("/api/tune/3")
    assert r.status_code == 404 and r.get_json() == {"error": "id: no tune run 3"}


@pytest.mark.parametrize("raw", ["0", "501", "x", HUGE])
def test_a_bad_limit_is_400_naming_limit(db, raw):
    c = login(create_app(db[0], TOKEN).test_client())
    r = c.get(f"/api/tune?limit={raw}")
    assert r.status_code == 400 and r.get_json()["error"].startswith("limit:")


def test_a_store_without_runs_lists_none(tmp_path):
    path = str(tmp_path / "empty.db")
    SqliteSink(path).close()
    c = login(create_app(path, TOKEN).test_client())
    assert c.get("/api/tune").get_json() == {"runs": []}
    assert c.get("/tune").status_code == 200
