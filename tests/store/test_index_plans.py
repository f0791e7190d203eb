"""The alert list's filters over the indexes the writer still keeps (store/tables.py): the
severity index holds only high severity (migration 10: an index costs the writer about 1 µs
an alert), and a since/until range with few alerts (e.g. after the newest) is read through
the time index instead of passing over every alert in id order. Same answers as a plain
filter over all alerts, on SQLite and PostgreSQL; an existing store migrates."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import store_sink
from store_fixtures import insert_as_before_flow_ids, sqlite_at_version

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))
from dashboard_fixtures import BASE_TS, fake_alert

from wirewatch.store import queries, schema
from wirewatch.store.queries import AlertFilter, Store, open_store
from wirewatch.store.sqlite_sink import SqliteSink

T = TypeVar("T")


def vm_steps(store: Store, read: Callable[[], T]) -> tuple[T, int]:
    """What `read` returns and how many virtual-machine steps SQLite took for it (a cost that
    does not depend on the machine's load)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0
    store.conn.set_progress_handler(count, 1)
    try:
        return read(), steps[0]
    finally:
        store.conn.set_progress_handler(None, 1)


N = 600


def records() -> list[dict]:
    out = []
    for i in range(N):
        a = fake_alert(i)
        a["alert"] = a["alert"] | {"severity": 1 if i % 50 == 0 else 2 + i % 2}  # high severity is rare
        out.append(a)
    return out


@pytest.fixture
def db(store_url, tmp_path):
    sink = store_sink(store_url, tmp_path)
    sink.write(records())
    sink.close()
    return store_url


def ids(db: str, **kw) -> list[int]:
    store = open_store(db)
    try:
        return [a["id"] for a in store.alerts(AlertFilter(limit=kw.pop("limit", 1000), **kw))]
    finally:
        store.close()


def expected(pred) -> list[int]:
    return sorted((i + 1 for i, a in enumerate(records()) if pred(i, a)), reverse=True)


def test_severity_filters_answer_as_before(db):
    assert ids(db, severity=1) == expected(lambda i, a: a["alert"]["severity"] == 1) and len(ids(db, severity=1)) == 12
    assert ids(db, severity=2) == expected(lambda i, a: a["alert"]["severity"] == 2)
    assert ids(db, severity=3, limit=7) == expected(lambda i, a: a["alert"]["severity"] == 3)[:7]
    assert ids(db, severity=1, port=80) == expected(lambda i, a: a["alert"]["severity"] == 1 and a["dest_port"] == 80)
    assert ids(db, severity=9) == []


@pytest.mark.parametrize("since,until", [(BASE_TS + N + 10, None), (BASE_TS + N - 5, None), (None, BASE_TS + 3),
                                         (BASE_TS + 100, BASE_TS + 110), (BASE_TS + 10, None), (None, BASE_TS + 500),
                                         (BASE_TS + 900, BASE_TS + 10)])
def test_time_ranges_small_or_large_answer_as_a_plain_filter(db, since, until, monkeypatch):
    monkeypatch.setattr(queries, "SMALL_TIME_RANGE", 100)  # ranges of 0-11 alerts are small, of 501-590 large
    def inside(i, a):
        ts = BASE_TS + i
        return (since is None or ts >= since) and (until is None or ts <= until)
    want = expected(inside)
    assert ids(db, since=since, until=until) == want
    assert ids(db, since=since, until=until, limit=5) == want[:5]
    assert ids(db, since=since, until=until, type="port_scan") == [i for i in want if (i - 1) % 2]
    if want:
        assert ids(db, since=since, until=until, before=want[0]) == want[1:]


def plan(conn: sqlite3.Connection, store: Store, f: AlertFilter) -> str:
    """The SQLite plan of the alert list's read for f."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        store.alerts(f)
    finally:
        conn.set_trace_callback(None)
    read = [s for s in seen if "SELECT a.id" in s][-1]
    return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + read))


def test_sqlite_reads_high_severity_and_small_time_ranges_by_index(tmp_path, monkeypatch):
    monkeypatch.setattr(queries, "SMALL_TIME_RANGE", 100)
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write(records())
    sink.close()
    store = Store(path)
    try:
        assert "alerts_severity" in plan(store.conn, store, AlertFilter(severity=1))
        assert "alerts_severity" not in plan(store.conn, store, AlertFilter(severity=2))  # in id order: common
        with_port = plan(store.conn, store, AlertFilter(severity=1, port=80))  # the port's index, not the partial one
        assert "alerts_sport" in with_port and "alerts_severity" not in with_port
        assert "alerts_ts" in plan(store.conn, store, AlertFilter(since=BASE_TS + N + 10))  # after the newest
        assert "alerts_ts" not in plan(store.conn, store, AlertFilter(since=BASE_TS))  # everything: in id order
        assert "alerts_ts" in plan(store.conn, store, AlertFilter(since=BASE_TS + N - 50, type="port_scan"))
    finally:
        store.close()


def test_a_store_of_schema_9_migrates_to_the_partial_severity_index(tmp_path):
    path = str(tmp_path / "old.db")
    c = sqlite_at_version(path, 9)
    insert_as_before_flow_ids(c, records())  # the rows as schema 9's writer stored them
    c.close()
    SqliteSink(path).close()  # opening migrates: 9 -> 10
    c = sqlite3.connect(path)
    assert c.execute("SELECT version FROM schema_version").fetchone()[0] == len(schema.MIGRATIONS) >= 10
    (sql,) = c.execute("SELECT sql FROM sqlite_master WHERE name = 'alerts_severity'").fetchone()
    assert sql.endswith("WHERE severity = 1")
    assert c.execute("SELECT count(*) FROM alerts INDEXED BY alerts_severity WHERE severity = 1").fetchone()[0] == 12
    c.close()
    assert ids(path, severity=1) == expected(lambda i, a: a["alert"]["severity"] == 1)


def test_postgresql_reads_an_address_range_by_its_index_and_sorts_it(pg_url, tmp_path, monkeypatch):
    """With ORDER BY id and a LIMIT, PostgreSQL walked the newest alerts and filtered: a range
    whose alerts are old passed over every newer alert (a minute per request at 1M). Below
    the window of the newest alerts, ordered by an expression, the read is the range's,
    sorted; the answer is the same."""
    monkeypatch.setitem(queries.WINDOW, "postgresql", 50)
    url = pg_url
    sink = store_sink(url, tmp_path)
    sink.write(records())
    sink.close()
    store = open_store(url)
    try:
        seen: list[str] = []
        real = store._rows
        store._rows = lambda sql, args=(): seen.append((sql, args)) or real(sql, args)  # type: ignore[method-assign]
        got = [a["id"] for a in store.alerts(AlertFilter(type="port_scan", src="10.0.1.0/24", limit=5))]
        sql, args = [(q, a) for q, a in seen if "SELECT a.id" in q][-1]  # (the first: the window)
        plan = "\n".join(r["QUERY PLAN"] for r in real("EXPLAIN " + sql, args))
    finally:
        store.close()
    assert "Sort" in plan, plan  # the range read and sorted, never a walk of the newest alerts by id
    want = expected(lambda i, a: a["type"] == "port_scan" and a["src_ip"].startswith("10.0.1."))[:5]
    assert got == want and want


# Filters whose index is not in id order (queries._newest_unordered): an address range, and
# text in PostgreSQL. A store whose alerts sit on both sides of a small window: sources of
# 10.9.0.0/16 only among the oldest, 10.5.0.0/16 on both sides, 10.7.0.0/16 only among the
# newest; the word "rareword" thrice, "oldword" only in the oldest 30, "everyword" in all; a
# time range is one too when it is not small (its alerts may be old).
M = 400


def spread(i: int) -> dict:
    third = i * 3 // M
    src = (f"10.9.0.{i % 200 + 1}" if i % 3 == 0 else f"10.5.{i % 5}.{i % 200 + 1}") if third == 0 else \
        f"10.5.{i % 5}.{i % 200 + 1}" if third == 1 else (f"10.7.0.{i % 200 + 1}" if i % 4 else f"10.5.1.{i % 200 + 1}")
    words = " everyword" + (" rareword" if i in (3, 200, M - 2) else "") + (" oldword" if i < 30 else "")
    return fake_alert(i, src_ip=src, dest_port=(22, 80, 443)[i % 3], src_port=1000 + i % 7,
                      message=f"Possible port scan from {src}{words}")


@pytest.fixture
def spread_db(store_url, tmp_path, monkeypatch):
    monkeypatch.setitem(queries.WINDOW, "sqlite", 50)  # the newest 50 of M: both steps are taken
    monkeypatch.setitem(queries.WINDOW, "postgresql", 50)
    sink = store_sink(store_url, tmp_path)
    sink.write([spread(i) for i in range(M)])
    sink.close()
    if not store_url.startswith("postgresql"):
        from wirewatch.store.search import catch_up
        catch_up(store_url)
    return store_url


def reference(**kw) -> list[int]:
    """The ids f would list, newest first, by a plain filter over the records in Python."""
    import ipaddress

    def net(v: str | None, ip: str) -> bool:
        return v is None or ipaddress.ip_address(ip) in ipaddress.ip_network(v)
    out = []
    for i in range(M):
        a = spread(i)
        if net(kw.get("src"), a["src_ip"]) and net(kw.get("dest"), a["dest_ip"]) \
                and kw.get("type", a["type"]) == a["type"] \
                and ("port" not in kw or kw["port"] in (a["src_port"], a["dest_port"])) \
                and ("q" not in kw or kw["q"] in a["message"].split()) \
                and ("before" not in kw or i + 1 < kw["before"]) and ("after" not in kw or i + 1 > kw["after"]) \
                and kw.get("since", BASE_TS + i) <= BASE_TS + i <= kw.get("until", BASE_TS + i):
            out.append(i + 1)
    return sorted(out, reverse=True)[:kw.get("limit", 50)]


@pytest.mark.parametrize("kw", [
    {"src": "10.9.0.0/16"}, {"src": "10.5.0.0/16"}, {"src": "10.7.0.0/16"}, {"src": "10.0.0.0/8"},
    {"src": "10.5.0.0/16", "limit": 200}, {"src": "10.5.0.0/16", "limit": 7}, {"src": "10.9.0.0/16", "limit": 1000},
    {"src": "10.5.0.0/16", "before": 300}, {"src": "10.5.0.0/16", "before": 340, "after": 320},
    {"src": "10.7.0.0/16", "before": 300}, {"src": "10.9.0.0/16", "type": "host_sweep"},
    {"src": "10.5.0.0/16", "type": "port_scan", "limit": 100}, {"src": "10.5.0.0/16", "port": 22},
    {"src": "10.9.0.0/16", "port": 1003}, {"src": "10.5.1.0/24", "dest": "192.168.0.0/16"},
    {"q": "rareword"}, {"q": "oldword"}, {"q": "everyword"}, {"q": "everyword", "before": 120, "limit": 30},
    {"q": "oldword", "type": "port_scan"}, {"q": "rareword", "src": "10.5.0.0/16"}, {"q": "nosuchword"},
    {"until": BASE_TS + 150}, {"since": BASE_TS + 20, "until": BASE_TS + 140}, {"since": BASE_TS + 100},
    {"until": BASE_TS + 150, "type": "port_scan"}, {"until": BASE_TS + 150, "src": "10.9.0.0/16"},
    {"until": BASE_TS + 150, "q": "everyword", "limit": 10}, {"since": BASE_TS + 360, "port": 22},
])
def test_filters_not_in_id_order_answer_as_a_plain_filter(spread_db, kw, monkeypatch):
    monkeypatch.setattr(queries, "SMALL_TIME_RANGE", 20)  # the time ranges here are large: read as the others
    want = reference(**kw)
    assert want or kw.get("q") == "nosuchword"  # (every other case finds something)
    assert ids(spread_db, **kw | {"limit": kw.get("limit", 50)}) == want


def test_sqlite_reads_a_dense_range_in_id_order_and_a_sparse_one_by_its_index(tmp_path, monkeypatch):
    """The newest page of a range that is common among the newest alerts is read in id order
    within the window (no sort of every match: a /8 at 1M sorted a million, 175 ms); a range
    found only below the window is read by its index and sorted (what matches is all it costs)."""
    monkeypatch.setitem(queries.WINDOW, "sqlite", 50)
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write([spread(i) for i in range(M)])
    sink.close()
    store = Store(path)
    try:
        seen: list[str] = []
        store.conn.set_trace_callback(seen.append)
        store.alerts(AlertFilter(src="10.0.0.0/8", limit=20))
        reads = [s for s in seen if "SELECT a.id" in s]
        assert len(reads) == 1  # the window held the page
        plan = " | ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + reads[0]))
        assert "TEMP B-TREE" not in plan and "alerts_src" not in plan, plan
        seen.clear()
        store.alerts(AlertFilter(src="10.9.0.0/16", limit=20))
        reads = [s for s in seen if "SELECT a.id" in s]
        assert len(reads) == 2
        plan = " | ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + reads[1]))
        assert "alerts_src" in plan, plan
    finally:
        store.close()


def pg_filled(pg_url: str, tmp_path, n: int, message_sql: str) -> None:
    """A PostgreSQL store of n alerts 1..n (ts = id, one source), written by SQL (the sink is too
    slow for 50,000), message_sql the message of alert i; analysed."""
    store_sink(pg_url, tmp_path).close()  # the schema
    import psycopg
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("INSERT INTO alerts (ts, type, severity, src_ip, dest_ip, src_key, dest_key, message, record) "
                  f"SELECT i, 'port_scan', 2, '10.0.0.1', '10.0.0.2', 'k', 'k', {message_sql}, '{{}}' "
                  "FROM generate_series(1, %s) i", (n,))
        c.execute("ANALYZE alerts")


def listed_with_plans(url: str, f: AlertFilter) -> tuple[list[int], list[str]]:
    """The ids the alert list gives for f, and the EXPLAIN ANALYZE of each of its id reads."""
    store = open_store(url)
    try:
        seen: list[tuple[str, list]] = []
        real = store._rows
        store._rows = lambda sql, args=(): seen.append((sql, args)) or real(sql, args)  # type: ignore[method-assign]
        got = [a["id"] for a in store.alerts(f)]
        plans = ["\n".join(r["QUERY PLAN"] for r in real("EXPLAIN ANALYZE " + sql, args))
                 for sql, args in seen if "SELECT a.id" in sql]
    finally:
        store.close()
    return got, plans


def test_postgresql_reads_a_rare_word_by_its_index_never_every_alert_in_id_order(pg_url, tmp_path):
    """A rare word walked the ids newest first and tested every alert (1.7 s at 1M: the
    planner guesses a word it has no statistics for is in 0.4 % of alerts); now only the
    newest WINDOW alerts are tested one by one and the older ones are found through the
    GIN index. 50,000 alerts (fewer, and PostgreSQL reads the table whole), the word in 3."""
    pg_filled(pg_url, tmp_path, 50000,
              "'Possible port scan from 10.0.0.1' || CASE WHEN i IN (7, 20000, 49990) THEN ' rareword' ELSE '' END")
    got, plans = listed_with_plans(pg_url, AlertFilter(q="rareword"))
    assert got == [49990, 20000, 7]
    store = open_store(pg_url)
    try:  # the dashboard asks the same again and again: psycopg prepares the reads, and
        for _ in range(12):  # PostgreSQL planned them once for any word after 10 runs (every id walked)
            assert [a["id"] for a in store.alerts(AlertFilter(q="rareword"))] == got
        generic = store._rows("SELECT statement, generic_plans FROM pg_prepared_statements "
                              "WHERE statement LIKE ?", ("%phraseto_tsquery%",))
    finally:
        store.close()
    assert generic and all(r["generic_plans"] == 0 for r in generic), generic
    import re
    tested = sum(int(k) for p in plans for k in re.findall(r"Rows Removed by Filter: (\d+)", p))
    assert tested <= queries.WINDOW["postgresql"], plans  # at most the window's alerts were tested one by one
    assert "alerts_search" in plans[-1], plans


def test_sqlite_text_with_another_filter_reads_the_text_index_a_window_at_a_time(tmp_path, monkeypatch):
    """Text with another filter collected every match's id from the FTS index first (0.6 s for
    a word in every alert at 1M); the newest window's matches are enough for a common word.
    Counted in SQLite's virtual-machine steps: a window of 50 of the 400 alerts against a
    window holding them all."""
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write([spread(i) for i in range(M)])
    sink.close()
    from wirewatch.store.search import catch_up
    catch_up(path)
    store = Store(path)
    steps = {}
    try:
        for window in (50, 100000):
            monkeypatch.setitem(queries.WINDOW, "sqlite", window)
            rows, steps[window] = vm_steps(store, lambda: store.alerts(AlertFilter(q="everyword", type="port_scan",
                                                                                    limit=5)))
            assert [a["id"] for a in rows] == reference(q="everyword", type="port_scan", limit=5)
    finally:
        store.close()
    assert steps[50] * 3 < steps[100000], steps


def test_postgresql_reads_an_old_time_range_by_its_index_never_every_newer_alert(pg_url, tmp_path, monkeypatch):
    """A time range of more than SMALL_TIME_RANGE alerts was read in id order: one of old
    alerts passed over every newer one (1.4 s for the first hour at 1M). Now the newest
    WINDOW alerts are tested one by one and the range below them is read by the time index."""
    pg_filled(pg_url, tmp_path, 50000, "'m'")
    import re
    for small in (5000, 100):  # a small range (the time index read alone), and one read below the window
        monkeypatch.setattr(queries, "SMALL_TIME_RANGE", small)
        until = 4900
        got, plans = listed_with_plans(pg_url, AlertFilter(until=until, limit=5))
        assert got == list(range(until, until - 5, -1))
        tested = sum(int(k) for p in plans for k in re.findall(r"Rows Removed by Filter: (\d+)", p))
        assert tested <= queries.WINDOW["postgresql"], plans
        assert "alerts_ts" in plans[-1], plans


@pytest.mark.parametrize("kw", [{"type": "rare_type"}, {"sensor": "rare"}, {"port": 9999}, {"src": "10.8.8.8"}])
def test_sqlite_a_wide_time_range_with_an_indexed_filter_is_read_by_that_filters_index(tmp_path, monkeypatch, kw):
    """Below the window, a time range that is not small was read through the time index
    whatever else the filter named: a rare type with a `since` before every alert sorted the
    whole store (0.7 -> 42 ms at 300,000). With a type, sensor, port or address the read is
    that filter's index in id order, which passes over only that filter's alerts; counted in
    SQLite's virtual-machine steps against the time range's size."""
    monkeypatch.setitem(queries.WINDOW, "sqlite", 50)
    monkeypatch.setattr(queries, "SMALL_TIME_RANGE", 100)  # the range (every alert) is not small
    n = 3000
    rare = set(range(7, n, 100))
    rows = []
    for i in range(n):
        a = fake_alert(i)
        if i in rare:
            a.update(type="rare_type", host="rare", dest_port=9999, src_ip="10.8.8.8")
        rows.append(a)
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write(rows)
    sink.close()
    store = Store(path)
    try:
        rows, steps = vm_steps(store, lambda: store.alerts(AlertFilter(since=BASE_TS - 1, limit=20, **kw)))
    finally:
        store.close()
    got = [a["id"] for a in rows]
    assert got == sorted((i + 1 for i in rare), reverse=True)[:20]
    assert steps < n * 5, steps  # every alert of the time range read and sorted: about 40 steps an alert


# Acknowledged alerts are read through a partial index of just them (tables.ACKNOWLEDGED_INDEX):
# `acknowledged=true` read every alert in id order (242 ms CPU at 1M when none is acknowledged).
ACKED = {5, 6, 77, 300, 301, 599}  # record indexes (ids are these + 1)


@pytest.fixture
def acked_db(store_url, tmp_path):
    from wirewatch.store.admin import open_triage
    sink = store_sink(store_url, tmp_path)
    sink.write(records())
    sink.close()
    triage = open_triage(store_url)
    try:
        assert triage.acknowledge([i + 1 for i in ACKED]) == len(ACKED)
    finally:
        triage.conn.close()
    return store_url


@pytest.mark.parametrize("kw", [{}, {"type": "port_scan"}, {"port": 80}, {"severity": 1}, {"src": "10.0.0.0/8"},
                                {"src": "10.0.1.51"}, {"since": BASE_TS + 100}, {"before": 300}, {"after": 6},
                                {"limit": 2}, {"type": "nosuch"}])
@pytest.mark.parametrize("value", [True, False])
def test_acknowledged_filters_answer_as_a_plain_filter(acked_db, kw, value):
    import ipaddress

    def match(i, a):
        return ((i in ACKED) == value and kw.get("type", a["type"]) == a["type"]
                and kw.get("port", a["dest_port"]) in (a["src_port"], a["dest_port"])
                and kw.get("severity", a["alert"]["severity"]) == a["alert"]["severity"]
                and ipaddress.ip_address(a["src_ip"]) in ipaddress.ip_network(kw.get("src", "0.0.0.0/0"))
                and BASE_TS + i >= kw.get("since", 0) and i + 1 < kw.get("before", N + 1) and i + 1 > kw.get("after", 0))
    want = expected(match)
    if "after" in kw:
        want = sorted(want)[:kw.get("limit", 1000)][::-1]
    assert ids(acked_db, acknowledged=value, **kw) == want[:kw.get("limit", 1000)]


def test_acknowledged_alerts_are_read_through_their_partial_index(acked_db):
    """Whatever else the filter names, `acknowledged=true` walks the index of acknowledged
    alerts in id order (SQLite's plan names it; PostgreSQL's EXPLAIN ANALYZE too, and tests
    no alert that is not acknowledged)."""
    for kw in ({}, {"type": "port_scan"}, {"port": 80}, {"src": "10.0.0.0/8", "since": BASE_TS}):
        if acked_db.startswith("postgresql"):
            got, plans = listed_with_plans(acked_db, AlertFilter(acknowledged=True, limit=50, **kw))
            assert all("alerts_acknowledged" in p for p in plans), plans
        else:
            store = Store(acked_db)
            try:
                assert "USING INDEX alerts_acknowledged" in plan(store.conn, store,
                                                                 AlertFilter(acknowledged=True, **kw)), kw
            finally:
                store.close()


def test_a_store_of_schema_14_gets_the_acknowledged_index(tmp_path):
    path = str(tmp_path / "old.db")
    c = sqlite_at_version(path, 14)
    insert_as_before_flow_ids(c, records())
    c.execute("UPDATE alerts SET acknowledged = 1 WHERE id IN (3, 30)")
    c.close()
    SqliteSink(path).close()  # opening migrates
    c = sqlite3.connect(path)
    (sql,) = c.execute("SELECT sql FROM sqlite_master WHERE name = 'alerts_acknowledged'").fetchone()
    assert sql.endswith("WHERE acknowledged = 1")
    assert c.execute("SELECT id FROM alerts INDEXED BY alerts_acknowledged WHERE acknowledged = 1").fetchall() == [(3,), (30,)]
    c.close()
    assert ids(path, acknowledged=True) == [30, 3]


# Bounded plans (queries._newest_unordered): below the newest window, a condition whose index
# holds at most SORT_CAP alerts drives an exact read; when every condition is more common than
# that, the answer is the window's matches and says what was searched (`searched_from`: every
# match from there up is on the page, none older), and the next page searches on from there.
def pages(url: str, limit: int = 10, **kw) -> tuple[list[int], int]:
    """Every id the alert list gives for kw, page after page as the dashboard asks for them
    (before = the API's next_before), and how many pages were bounded."""
    store = open_store(url)
    out: list[int] = []
    bounded = 0
    before = None
    try:
        while True:
            rows, bound = store.alerts_page(AlertFilter(limit=limit, before=before, **kw))
            got = [r["id"] for r in rows]
            assert got == sorted(got, reverse=True) and not set(got) & set(out)
            if bound:
                bounded += 1
                assert all(i >= bound["searched_from"] for i in got) and bound["searched_below"] == (before or M + 1)
                assert "were searched" in bound["reason"]
            out += got
            before = (bound["searched_from"] if len(got) < limit else got[-1]) if bound else \
                (got[-1] if len(got) == limit else None)
            if before is None:
                return out, bounded
    finally:
        store.close()


@pytest.mark.parametrize("kw,bounded", [
    ({"src": "10.9.0.0/16"}, True), ({"src": "10.5.0.0/16"}, False), ({"src": "10.9.0.0/16", "port": 22}, True),
    ({"until": BASE_TS + 150}, True), ({"until": BASE_TS + 150, "type": "port_scan"}, True),
    ({"q": "oldword", "type": "port_scan"}, None), ({"q": "everyword", "until": BASE_TS + 150}, None),
    ({"src": "10.9.0.0/16", "type": "host_sweep"}, True), ({"q": "rareword", "src": "10.5.0.0/16"}, False),
    ({"q": "everyword", "type": "no_such_type"}, False), ({"src": "10.9.0.0/16", "type": "no_such_type"}, False),
    ({"type": "port_scan", "port": 22}, None), ({"type": "host_sweep", "port": 1003}, None),
])
def test_bounded_pages_together_list_every_match_once(spread_db, kw, bounded, monkeypatch):
    """With SORT_CAP at 20 (the window 50 of 400 alerts): a range or time range of old alerts
    (10.9.0.0/16: 45 of the oldest), or one with a type, is more than 20 below the window, so
    its first page is the window's (none) and says so; paging on (before = searched_from)
    lists every match once, newest first. A rare word, a port side of few alerts, or a type
    no alert has answers exactly at once. (None: either; PostgreSQL counts a word by the
    planner's estimate, which for a word with no statistics yet is a few.)"""
    monkeypatch.setitem(queries.SORT_CAP, "sqlite", 20)
    monkeypatch.setitem(queries.SORT_CAP, "postgresql", 20)
    monkeypatch.setattr(queries, "TEXT_CHECK_CAP", 5)
    monkeypatch.setattr(queries, "SMALL_TIME_RANGE", 20)
    got, n_bounded = pages(spread_db, **kw)
    assert got == reference(**kw, limit=M)
    assert bounded is None or (n_bounded > 0) == bounded, n_bounded


def test_a_filter_of_two_common_conditions_that_never_meet_costs_a_window(tmp_path, monkeypatch):
    """A word with a type it never has (at 1M: 88 ms in SQLite, 178 ms in PostgreSQL, every
    match of one read through its index): the newest window is searched, then the answer says
    so, at the cost of the window and two counts of at most SORT_CAP + 1 (SQLite's
    virtual-machine steps against reading the word's every match)."""
    monkeypatch.setitem(queries.WINDOW, "sqlite", 50)
    monkeypatch.setitem(queries.SORT_CAP, "sqlite", 20)
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write([spread(i) | {"type": "port_scan"} for i in range(M)])
    sink.write([spread(i) | {"type": "host_sweep", "message": "no words"} for i in range(M)])
    sink.close()
    from wirewatch.store.search import catch_up
    catch_up(path)
    store = Store(path)
    try:
        (rows, bound), capped = vm_steps(store, lambda: store.alerts_page(AlertFilter(q="everyword", type="host_sweep")))
        assert rows == [] and bound and bound["searched_from"] == 2 * M + 1 - 50
        monkeypatch.setitem(queries.SORT_CAP, "sqlite", 10 ** 6)  # the word's every match read, checked
        (rows, bound), steps = vm_steps(store, lambda: store.alerts_page(AlertFilter(q="everyword", type="host_sweep")))
        assert rows == [] and bound is None
    finally:
        store.close()
    assert capped * 2 < steps, (capped, steps)


def test_postgresql_counts_a_condition_by_its_index_and_bounds_a_type_and_sensor_that_never_meet(pg_url, tmp_path):
    """A type and a sensor common below the window, never together in it: the window's read
    tests at most WINDOW alerts, each condition is counted by its own index (with a LIMIT and no
    ORDER BY the planner read the table from its start: seconds a request under load for an old
    range), and the answer is bounded, not a walk of every alert."""
    store_sink(pg_url, tmp_path).close()
    import psycopg
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("INSERT INTO alerts (ts, type, severity, src_ip, dest_ip, src_key, dest_key, message, record, sensor) "
                  "SELECT i, CASE WHEN i % 2 = 0 THEN 'port_scan' ELSE 'host_sweep' END, 2, '10.0.0.1', '10.0.0.2', "
                  "'k', 'k', 'm', '{}', CASE WHEN i <= 40000 AND i % 2 = 1 THEN 's1' ELSE 's2' END FROM generate_series(1, 50000) i")
        c.execute("ANALYZE alerts")
    store = open_store(pg_url)
    try:
        seen: list[tuple[str, list]] = []
        real, real_value = store._rows, store._value
        store._rows = lambda sql, args=(): seen.append((sql, args)) or real(sql, args)  # type: ignore[method-assign]
        store._value = lambda sql, args=(): seen.append((sql, args)) or real_value(sql, args)  # type: ignore[method-assign]
        rows, bound = store.alerts_page(AlertFilter(type="port_scan", sensor="s1"))
        plans = {sql: "\n".join(r["QUERY PLAN"] for r in real("EXPLAIN ANALYZE " + sql, args))
                 for sql, args in seen if "count(*)" in sql or "SELECT a.id" in sql}
    finally:
        store.close()
    assert rows == [] and bound and bound["searched_from"] == 50001 - queries.WINDOW["postgresql"]
    counts = [p for sql, p in plans.items() if "count(*)" in sql]
    assert len(counts) == 2 and all("Seq Scan" not in p for p in counts), counts
    assert any("alerts_type" in p for p in counts) and any("alerts_sensor" in p for p in counts), counts
    import re
    tested = sum(int(k) for p in plans.values() for k in re.findall(r"Rows Removed by Filter: (\d+)", p))
    assert tested <= queries.WINDOW["postgresql"], plans


def index_blocks(plan: dict, index: str) -> int:
    """Shared blocks (hit or read) the scans of `index` in an EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) plan read."""
    own = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0) if plan.get("Index Name") == index else 0
    return own + sum(index_blocks(p, index) for p in plan.get("Plans", []))


def test_postgresql_text_search_reads_a_short_pending_list_while_a_sensor_writes(pg_url, tmp_path):
    """New alerts' words wait in the GIN index's pending list, which every search through the
    index reads whole, until it outgrows gin_pending_list_limit (4 MB by default: a rare word
    cost 1.5 ms at 1M under a writer, 0.06 ms with the list merged). Migration 9 bounds it at
    128 kB (16 pages). 6,000 alerts written by the sink in batches of 100, as a sensor does."""
    sink = store_sink(pg_url, tmp_path)
    records = [fake_alert(i) | ({"message": f"Possible port scan rareword {i}"} if i % 1500 == 7 else {})
               for i in range(6000)]
    for lo in range(0, len(records), 100):
        sink.write(records[lo:lo + 100])
    sink.close()
    store = open_store(pg_url)
    try:
        assert [a["id"] for a in store.alerts(AlertFilter(q="rareword"))] == [4508, 3008, 1508, 8]
        store.conn.execute("SET enable_seqscan = off")  # (the index read, as at 1M; 6,000 alerts are a page scan)
        (plan,) = store._value("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM alerts "
                               "WHERE search @@ phraseto_tsquery('simple', ?)", ("rareword",))
    finally:
        store.close()
    assert plan["Plan"]["Actual Rows"] == 4
    assert index_blocks(plan["Plan"], "alerts_search") <= 16 + 4, plan  # the pending list, the metapage, the entry tree


def statements(store, read: Callable[[], T]) -> tuple[T, list[str]]:
    """What `read` returns and the statements the store ran for it."""
    seen: list[str] = []
    real = store._rows, store._value
    store._rows = lambda sql, args=(): seen.append(sql) or real[0](sql, args)  # type: ignore[method-assign]
    store._value = lambda sql, args=(): seen.append(sql) or real[1](sql, args)  # type: ignore[method-assign]
    try:
        return read(), seen
    finally:
        store._rows, store._value = real  # type: ignore[method-assign]


@pytest.mark.parametrize("muted", [False, True])
def test_a_type_and_a_sensor_the_rollups_show_common_below_the_window_are_not_counted(store_url, tmp_path,
                                                                                      monkeypatch, muted):
    """A type and a sensor that never meet, both common: each was counted to SORT_CAP + 1 by
    its index to learn that it cannot drive a read (two thirds of such a request's reads at
    1M). alert_types and sensor_types count the alerts not muted, so at least that many less
    the window lie below it: no count, the same bounded answer. With most of the type's alerts
    muted the roll-ups know too few of them: it is counted, as before."""
    for dialect in ("sqlite", "postgresql"):
        monkeypatch.setitem(queries.WINDOW, dialect, 50)
        monkeypatch.setitem(queries.SORT_CAP, dialect, 20)
    monkeypatch.setattr(queries, "TEXT_CHECK_CAP", 5)
    sink = store_sink(store_url, tmp_path)
    sink.write([fake_alert(i, host="edge-a" if i % 2 else "edge-b", type="port_scan" if i % 2 else "host_sweep")
                | ({"muted": 1} if muted and i % 2 and i < 300 else {}) for i in range(400)])
    sink.close()
    f = AlertFilter(type="port_scan", sensor="edge-b")  # never together
    store = open_store(store_url)
    try:
        (got, ran) = statements(store, lambda: store.alerts_page(f))
        monkeypatch.setattr(queries.Queries, "_common_below", lambda self, f, names, low: set())
        (counted, ran_before) = statements(store, lambda: store.alerts_page(f))
    finally:
        store.close()
    assert got == counted == ([], {"searched_from": 351, "searched_below": 401, "reason": got[1]["reason"]})
    assert sum("count(*)" in s for s in ran_before) == 2
    assert sum("count(*)" in s for s in ran) == (1 if muted else 0), ran  # (muted: the type, 50 loud alerts in all)


def test_postgresql_estimates_a_word_without_costing_its_gin_index(pg_url, tmp_path, monkeypatch):
    """The text's count below the window is the planner's estimate (an EXPLAIN). Planned as an
    indexable condition, the GIN index was costed, which reads its metapage: under a writer
    merging the pending list the EXPLAIN waited up to 57 ms (1M alerts). Now the text is a
    test of each row there, which no index reads: the same estimate, the index not costed."""
    monkeypatch.setitem(queries.WINDOW, "postgresql", 50)
    monkeypatch.setitem(queries.SORT_CAP, "postgresql", 20)  # (the type: common by the roll-ups; the text estimated)
    monkeypatch.setattr(queries, "TEXT_CHECK_CAP", 5)
    sink = store_sink(pg_url, tmp_path)
    sink.write([fake_alert(i) for i in range(400)])  # "Possible port scan detected from alert i", two types
    sink.close()
    store = open_store(pg_url)
    try:
        store.conn.execute("ANALYZE alerts")
        (rows, bound), ran = statements(store, lambda: store.alerts_page(AlertFilter(q="port scan", type="host_sweep")))
        (estimate,) = [s for s in ran if s.startswith("EXPLAIN")]
        clause = estimate.split(" WHERE ", 1)[1]
        store.conn.execute("SET enable_seqscan = off")  # (an index the condition could use would be taken)
        (plan,) = store._value("EXPLAIN (FORMAT JSON) SELECT 1 FROM alerts a WHERE " + clause, ("port scan",))
        (indexed,) = store._value("EXPLAIN (FORMAT JSON) SELECT 1 FROM alerts a WHERE a.search @@ "
                                  "phraseto_tsquery('simple', ?)", ("port scan",))
    finally:
        store.close()
    assert [r["id"] for r in rows] == list(range(399, 350, -2)) and bound and bound["searched_from"] == 351
    assert "alerts_search" not in json.dumps(plan) and "alerts_search" in json.dumps(indexed), plan
    assert plan["Plan"]["Plan Rows"] == indexed["Plan"]["Plan Rows"]


def test_postgresql_reads_are_not_jit_compiled(pg_url, tmp_path):
    """A read the planner costs above jit_above_cost had its expressions compiled, even for the
    EXPLAIN that estimates a word (2.06 ms of a 0.24 ms statement at 1M): the dashboard's reads
    take a millisecond, JIT pays off only for long queries. Here every plan is above the cost."""
    sink = store_sink(pg_url, tmp_path)
    sink.write([fake_alert(i) for i in range(50)])
    sink.close()
    store = open_store(pg_url)
    try:
        store.conn.execute("SET jit_above_cost = 0")
        (plan,) = store._value("EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM alerts a WHERE " + store._text_check,
                               ("port scan",))
    finally:
        store.close()
    assert plan["Plan"]["Plans"][0]["Node Type"] == "Seq Scan" and "JIT" not in plan, plan
