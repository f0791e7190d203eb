"""store/postgres_schema.py: connecting (one line naming the database, never its password),
and migrations that many sensors may start at once."""

from __future__ import annotations

import threading

import pytest

from wirewatch.store.postgres_schema import MIGRATIONS, connect, is_postgres, migrate, shown


def test_is_postgres_by_scheme():
    assert is_postgres("postgresql://u@h/db") and is_postgres("postgres://h/db")
    assert not is_postgres("var/wirewatch.db") and not is_postgres("sqlite:///x.db") and not is_postgres("")


def test_shown_drops_the_password():
    text = shown("postgresql://wirewatch:s3cret@db.internal:5433/alerts")
    assert "s3cret" not in text and "db.internal" in text and "5433" in text and "alerts" in text
    assert shown("postgresql://[not a url") == "postgresql://..."
    assert shown("var/wirewatch.db") == "var/wirewatch.db"  # a SQLite file is named as it is


def test_an_unreachable_database_is_one_line_without_the_password():
    from ports import free_port
    url = f"postgresql://wirewatch:hunter2@127.0.0.1:{free_port()}/wirewatch"
    with pytest.raises(OSError) as exc:
        connect(url)
    text = str(exc.value)
    assert "hunter2" not in text and "\n" not in text and ": cannot open alert store: " in text and "127.0.0.1" in text


def tables(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_migrate_reaches_the_latest_version_once(pg_url):
    conn = connect(pg_url, autocommit=True)
    assert migrate(conn) == len(MIGRATIONS)
    assert {"alerts", "stats", "mutes", "alert_minutes", "alert_types", "alert_sources", "sensors", "sensor_minutes",
            "source_activity", "sensor_sources", "sensor_types", "alert_owners", "owner_names", "tune_runs",
            "schema_version"} <= tables(conn)
    assert migrate(conn) == len(MIGRATIONS)  # nothing left to do
    assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_sensors_starting_together_migrate_once_under_the_lock(pg_url):
    versions, errors = [], []

    def start() -> None:
        try:
            c = connect(pg_url, autocommit=True)
            versions.append(migrate(c))
            c.close()
        except Exception as exc:  # noqa: BLE001 - collected, the assertion names it
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and versions == [len(MIGRATIONS)] * 4


def test_a_read_only_connection_refuses_writes(pg_url):
    import psycopg
    migrate(connect(pg_url, autocommit=True))
    ro = connect(pg_url, read_only=True, autocommit=True)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        ro.execute("DELETE FROM alerts")
    ro.close()
