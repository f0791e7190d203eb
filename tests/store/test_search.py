"""Free-text search through each store's full-text index (SQLite FTS5, PostgreSQL
tsvector): phrases of words over message and record, newest first, keyset pages, and
any text at all (FTS syntax, quotes, punctuation only) is a query, never an error."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from conftest import store_sink
from store_fixtures import insert_as_before_flow_ids, sqlite_at_version

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))
from dashboard_fixtures import TOKEN, fake_alert, login

from wirewatch.store.postgres_schema import is_postgres
from wirewatch.store.queries import AlertFilter, open_store
from wirewatch.store.search import catch_up
from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.web import create_app


def alerts() -> list[dict]:
    out = [fake_alert(i, host="edge-a") for i in range(300)]
    out[7]["message"] = "Blacklisted address 203.0.113.9 talked to 10.0.0.8"
    out[7]["src_ip"] = "203.0.113.9"
    out[250]["evidence"] = {"sample_ports": [31337, 12345], "mode": "slow window"}
    out[120]["dest_ip"] = "2001:db8:77::5"
    out[120]["flow_id"] = 4242424242
    out[121]["alert"] = {**out[121]["alert"], "signature_id": 9000777}
    out[130]["evidence"]["distinct_ports"] = 65001
    out[140]["message"] = "Unusual traffic from 198.51.100.4: IP protocol 253. Seen on 2001:db8:99::: twice"
    return out


@pytest.fixture
def db(store_url, tmp_path):
    url = store_url
    sink = store_sink(url, tmp_path)
    sink.write(alerts())
    sink.close()
    if not is_postgres(url):  # the dashboard indexes a SQLite store (at start, then every 2 s)
        assert catch_up(url) == 300 and catch_up(url) == 0
    return url


def ids(db: str, **kw) -> list[int]:
    store = open_store(db)
    try:
        return [a["id"] for a in store.alerts(AlertFilter(limit=kw.pop("limit", 500), **kw))]
    finally:
        store.close()


def test_phrases_of_words_in_message_and_record(db):
    assert ids(db, q="alert 17") == [18]  # "...detected from alert 17", not 170-179
    assert ids(db, q="Blacklisted address") == [8]
    assert ids(db, q="203.0.113.9") == [8]  # an address, in message and record
    assert ids(db, q="203.0.113") == []  # an address is one word (SQLite: one token look-up, not a phrase of four)
    assert ids(db, q="31337") == [251]  # evidence in the record
    assert ids(db, q="slow window") == [251]
    assert len(ids(db, q="port scan")) == 300  # every message or signature ("WIREWATCH port scan")
    assert ids(db, q="no such words here") == []


def test_numbers_ids_and_times_in_the_record_are_words_beside_addresses(db):
    """SQLite migration 11 made ':' a token character so that an IPv6 address is one word; the
    record's JSON then glued each value to its key's colon (`"flow_id":7` one token ':7'), and a
    flow_id, signature id, number or time was found no more. Addresses stay one word each."""
    assert ids(db, q="4242424242") == [121]  # a flow_id
    assert ids(db, q="9000777") == [122]  # a signature id
    assert ids(db, q="65001") == [131]  # a number of the evidence
    assert ids(db, q="2026-01-01T00:02:15.000000+0000") == [136]  # a time, as the record has it
    assert ids(db, q="2001:db8:77::5") == [121]  # an IPv6 address
    if not is_postgres(db):  # SQLite: an address is one word; PostgreSQL's parser splits IPv6 at its
        assert ids(db, q="2001:db8:77") == []  # colons, and a run of its leading groups is a phrase it has
    assert ids(db, q="10.0.0.8") == [8] and ids(db, q="10.0.0") == []
    assert ids(db, q="flow_id 4242424242") == [121] and ids(db, q='"flow_id":4242424242') == [121]


def test_a_colon_or_full_stop_after_a_word_is_punctuation(db):
    """The engine's messages put a colon after an address ("Unusual traffic from 10.10.0.66: IP
    protocol 253"): with ':' and '.' token characters that was the word '10.10.0.66:', and the
    message's phrase "traffic from 10.10.0.66" was found no more (the record's src_ip still was)."""
    assert ids(db, q="traffic from 198.51.100.4") == [141]
    assert ids(db, q="198.51.100.4: IP protocol 253") == [141]
    assert ids(db, q="protocol 253 seen on") == [141]
    assert ids(db, q="2001:db8:99::") == [141] and ids(db, q="seen on 2001:db8:99::") == [141]
    assert ids(db, q="198.51.100") == []


def test_text_search_pages_newest_first_and_combines_with_filters(db):
    first = ids(db, q="port scan", limit=100)
    assert first == sorted(first, reverse=True) and len(first) == 100
    second = ids(db, q="port scan", limit=100, before=first[-1])
    assert max(second) < min(first) and len(second) == 100
    both = ids(db, q="port scan", type="port_scan")
    assert both and all(i % 2 == 0 for i in both)  # fake alert i (id i + 1) is a port_scan when i is odd


@pytest.mark.parametrize("q", ['"', 'a"b', "***", "NEAR(a b)", "alert AND 17", "-", "()", "é", "'; DROP TABLE alerts"])
def test_any_text_is_a_query_not_an_error(db, q):
    c = login(create_app(db, TOKEN).test_client())
    r = c.get("/api/alerts", query_string={"q": q})
    assert r.status_code == 200, (q, r.get_json())
    assert c.get("/api/alerts?limit=1").get_json()["alerts"]  # nothing was dropped


def test_the_dashboard_indexes_new_sqlite_alerts_within_seconds_and_retention_unindexes(tmp_path):
    import sqlite3

    from wirewatch.store.search import Indexer
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write(alerts())
    catch_up(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    indexer = Indexer(conn, every_s=0.1).start()
    try:
        sink.write([fake_alert(1000, message="Late arrival from 198.51.100.77", host="edge-b")])
        deadline = time.time() + 5
        while ids(path, q="Late arrival") != [301]:
            assert time.time() < deadline, "a new alert was not searchable within 5 s"
            time.sleep(0.1)
    finally:
        indexer.stop.set()
        indexer.thread.join(timeout=5)
    conn.execute("DELETE FROM alerts WHERE id <= 10")  # what retention does
    assert ids(path, q="Blacklisted address") == []  # alert 8 is gone from the index too
    assert len(ids(path, q="port scan")) == 291
    sink.close()


def test_a_large_backlog_is_indexed_in_the_background_and_search_says_how_far_it_got(tmp_path, monkeypatch):
    """The dashboard serves before the index is complete (a million alerts after an upgrade
    take minutes): a text search then covers the indexed alerts, and the answer says so."""
    import sqlite3

    import wirewatch.web
    from wirewatch.store.search import Indexer
    monkeypatch.setattr(wirewatch.web, "START_LIMIT", 100)  # stands in for 20,000 of a big store
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write(alerts())
    sink.close()
    c = login(create_app(path, TOKEN).test_client())
    early = c.get("/api/alerts", query_string={"q": "slow window"}).get_json()  # alert 251: not indexed yet
    assert early["alerts"] == []
    assert early["search"] == {"indexed_through": 100, "latest_id": 300, "pending": 200, "complete": False}
    assert "search" not in c.get("/api/alerts").get_json()  # only a text search reports it
    page = c.get("/alerts").get_data(as_text=True)
    assert 'id="search-note"' in page
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    indexer = Indexer(conn, every_s=60).start()  # its first round is at once, not after every_s
    try:
        deadline = time.time() + 10
        while not (r := c.get("/api/alerts", query_string={"q": "slow window"}).get_json())["alerts"]:
            assert time.time() < deadline, "the background indexer did not finish 200 alerts in 10 s"
            time.sleep(0.05)
    finally:
        indexer.stop.set()
        indexer.thread.join(timeout=5)
    assert [a["id"] for a in r["alerts"]] == [251]
    assert r["search"] == {"indexed_through": 300, "latest_id": 300, "pending": 0, "complete": True}


def test_a_loaded_machine_shrinks_the_indexing_chunks(tmp_path, monkeypatch):
    """Each indexing transaction holds the write lock: when one takes longer than CHUNK_S
    the next is smaller, so the sensor's writer never waits long."""
    import sqlite3

    from wirewatch.store import search
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write(alerts())
    sink.close()
    sizes: list[int] = []
    real = search.time.perf_counter
    ticks = iter(range(10**6))
    monkeypatch.setattr(search.time, "perf_counter", lambda: next(ticks) * 1.0)  # every chunk "takes" 1 s
    conn = sqlite3.connect(path, isolation_level=None)
    conn.set_trace_callback(lambda sql: sizes.append(int(sql.rsplit(" ", 1)[1].strip(")")))
                            if sql.startswith("SELECT count(*), max(id)") else None)
    try:
        assert search.index_pending(conn, chunk=160) == 300
    finally:
        monkeypatch.setattr(search.time, "perf_counter", real)
        conn.close()
    assert sizes == [160, 100, 100]  # halved, never below 100; the last chunk was short: done


def test_a_store_indexed_by_the_old_tokenizer_is_reindexed_with_addresses_as_words(tmp_path):
    from wirewatch.store.search import index_pending
    path = str(tmp_path / "old.db")
    c = sqlite_at_version(path, 10)
    insert_as_before_flow_ids(c, alerts())  # as schema 10's writer stored them
    assert index_pending(c) == 300  # and its dashboard indexed them: "203.0.113.9" as four tokens
    assert c.execute("SELECT count(*) FROM alerts_fts WHERE alerts_fts MATCH '\"203 0 113\"'").fetchone()[0] == 1
    c.close()
    SqliteSink(path).close()  # migrates to 11: the index is rebuilt, from the first alert
    store = open_store(path)
    assert store.search_status() == {"indexed_through": 0, "latest_id": 300, "pending": 300, "complete": False}
    store.close()
    assert catch_up(path) == 300
    assert ids(path, q="203.0.113.9") == [8] and ids(path, q="203.0.113") == []


def test_alerts_stored_after_retention_deleted_every_alert_are_still_indexed(tmp_path):
    """Retention by size may delete every alert; new ids then start again below the index's
    pointer, and they were never indexed (nor, for a storm, rolled up: store/deferred.py)."""
    import sqlite3

    from wirewatch.store.deferred import status
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write([fake_alert(i) for i in range(2000)])  # a storm's batch: its source roll-ups pending too
    catch_up(path)
    sink._delete_through(2000)
    sink.write([fake_alert(i, message="After the wipe from 198.51.100.77") for i in range(3)])
    catch_up(path)
    assert ids(path, q="After the wipe") == [3, 2, 1]
    conn = sqlite3.connect(path)
    assert status(conn)["complete"] and conn.execute("SELECT sum(count) FROM alert_sources").fetchone()[0] == 3
    conn.close()
    sink.close()


def test_a_store_of_schema_11_is_reindexed_with_the_records_values_as_words(tmp_path):
    """A v11 store's index glued each record value to its key's colon: migration 13 empties it
    (the delete trigger then matches what the indexer writes) and it is rebuilt; retention's
    deletes afterwards leave FTS5's integrity check clean."""
    import sqlite3

    path = str(tmp_path / "v11.db")
    c = sqlite_at_version(path, 11)
    insert_as_before_flow_ids(c, alerts())
    c.execute("INSERT INTO alerts_fts(rowid, message, record) SELECT id, message, record FROM alerts")  # as v11 did
    c.execute("UPDATE alerts_fts_done SET last_id = 300")
    assert c.execute("SELECT count(*) FROM alerts_fts WHERE alerts_fts MATCH '\":4242424242\"'").fetchone()[0] == 1
    c.close()
    assert ids(path, q="4242424242") == []  # the v11 index: the flow_id is the token ':4242424242'
    SqliteSink(path).close()  # migrates to 12, 13 and 14
    store = open_store(path)
    assert store.search_status() == {"indexed_through": 0, "latest_id": 300, "pending": 300, "complete": False}
    store.close()
    assert catch_up(path) == 300
    assert ids(path, q="4242424242") == [121] and ids(path, q="2001:db8:77::5") == [121]
    c = sqlite3.connect(path, isolation_level=None)
    assert c.execute("SELECT count(*) FROM alerts_fts WHERE alerts_fts MATCH '\":4242424242\"'").fetchone()[0] == 0
    c.execute("DELETE FROM alerts WHERE id <= 150")  # what retention does: the trigger takes them out
    c.execute("INSERT INTO alerts_fts(alerts_fts, rank) VALUES ('integrity-check', 0)")  # the index itself
    # the deleted rows' tokens are gone from the index (a delete with other text would leave them)
    assert c.execute("SELECT count(*) FROM alerts_fts WHERE alerts_fts MATCH '\"9000777\"'").fetchone()[0] == 0
    assert c.execute("SELECT count(*) FROM alerts_fts WHERE alerts_fts MATCH '\"198.51.100.4\"'").fetchone()[0] == 0
    assert c.execute("SELECT count(*) FROM alerts_fts WHERE alerts_fts MATCH 'port'").fetchone()[0] == 150
    c.close()
    assert ids(path, q="4242424242") == [] and len(ids(path, q="port scan")) == 150
