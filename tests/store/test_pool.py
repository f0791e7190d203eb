"""store/pool.py: dashboard requests reuse open stores; a broken or surplus one is closed."""

from __future__ import annotations

import sqlite3

import pytest
from dashboard_fixtures import store_with_alerts

from wirewatch.store.pool import StorePool
from wirewatch.store.queries import AlertFilter, Store


def is_closed(store) -> bool:
    try:
        store.conn.execute("SELECT 1")
    except (sqlite3.ProgrammingError, Exception) as exc:  # noqa: BLE001 - sqlite3 or psycopg, both say closed
        return "closed" in str(exc).lower()
    return False


@pytest.fixture
def db(tmp_path):
    return store_with_alerts(str(tmp_path / "ww.db"), 3)


def test_a_released_store_is_handed_out_again(db):
    opened = []
    pool = StorePool(db, opener=lambda url: opened.append(Store(url)) or opened[-1])
    a = pool.acquire()
    b = pool.acquire()  # two requests at once: two stores
    assert len(opened) == 2 and a is not b
    pool.release(a)
    pool.release(b)
    assert pool.acquire() is b and pool.acquire() is a and len(opened) == 2  # last in, first out
    assert len(a.alerts(AlertFilter())) == 3


def test_a_failed_request_or_a_full_pool_closes_the_store(db):
    pool = StorePool(db, size=1)
    a, b, c = pool.acquire(), pool.acquire(), pool.acquire()
    pool.release(a, failed=True)
    assert is_closed(a)
    pool.release(b)
    pool.release(c)  # no room
    assert not is_closed(b) and is_closed(c)
    pool.close()
    assert is_closed(b) and pool.idle.empty()


def test_a_postgres_connection_that_broke_is_dropped_and_the_next_request_reconnects(pg_url, postgres, tmp_path):
    from conftest import store_sink
    from dashboard_fixtures import fake_alert
    sink = store_sink(pg_url, tmp_path)
    sink.write([fake_alert(i) for i in range(2)])
    sink.close()
    pool = StorePool(pg_url)
    first = pool.acquire()
    pool.release(first)
    postgres.stop("fast")  # the database restarts: the pooled connection is dead
    postgres.start()
    again = pool.acquire()
    assert again is first
    with pytest.raises(Exception):  # noqa: B017 - psycopg's OperationalError, whichever its subclass
        again.alerts(AlertFilter())
    pool.release(again, failed=True)
    fresh = pool.acquire()
    assert fresh is not first and len(fresh.alerts(AlertFilter())) == 2
    pool.release(fresh)
    pool.close()
