"""A writer whose store a newer wirewatch migrates while it runs (issue 12, upgrade skew): each
write transaction reads the schema's version first (SQLite: schema_version under the write
lock; PostgreSQL: after a shared hold of the migration lock), and on a newer one than it knows
the writer stores nothing more: that batch and every later record go to its spool, and the
command ends with one line, exit status 2. An upgraded wirewatch then stores the spool: every
alert once, the roll-ups counting each once. A writer started on a newer store refuses at once.

The writers are real: `wirewatch read -` fed through a pipe (SQLite and the tests' PostgreSQL
server) and a live `wirewatch monitor` in namespaces under an nmap scan; "a newer wirewatch"
is a migration this one does not know (schema_version one higher, a table of its own)."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import SRC, cli, read_events, store_sink
from netns import Monitor, can_create_namespaces
from ports import free_port
from scapy.layers.inet import IP, TCP

from wirewatch.craft import BASE_TS, eth, syn_scan, write_pcap
from wirewatch.store import postgres_schema, schema
from wirewatch.store.postgres_schema import MIGRATION_LOCK, connect, is_postgres
from wirewatch.store.queries import open_store

VICTIM = "10.0.0.2"


def migrate_ahead(url: str) -> int:
    """What a newer wirewatch's first start does to the store: a migration this one does not
    know (under the lock a migration takes). Returns the new version."""
    if is_postgres(url):
        ahead = len(postgres_schema.MIGRATIONS) + 1
        conn = connect(url)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE next_release (x INTEGER)")
            conn.execute("UPDATE schema_version SET version = %s", (ahead,))
        conn.close()
        return ahead
    ahead = len(schema.MIGRATIONS) + 1
    conn = sqlite3.connect(url, isolation_level=None, timeout=10)
    conn.executescript(f"BEGIN IMMEDIATE; CREATE TABLE next_release (x INTEGER); "
                       f"UPDATE schema_version SET version = {ahead}; COMMIT;")
    conn.close()
    return ahead


@contextmanager
def upgraded() -> Iterator[None]:
    """This process as the newer wirewatch: it knows the migration migrate_ahead made."""
    schema.MIGRATIONS.append("CREATE TABLE IF NOT EXISTS next_release (x INTEGER)")
    postgres_schema.MIGRATIONS.append("CREATE TABLE IF NOT EXISTS next_release (x INTEGER)")
    try:
        yield
    finally:
        schema.MIGRATIONS.pop()
        postgres_schema.MIGRATIONS.pop()


def stored(url: str) -> list[dict[str, Any]]:
    store = open_store(url)
    try:
        return [json.loads(r["record"]) for r in store._rows("SELECT record FROM alerts ORDER BY id")]
    finally:
        store.close()


def any_stored(url: str) -> bool:
    """Whether the store holds an alert yet (False while the writer has not made it)."""
    try:
        return bool(stored(url))
    except Exception:  # noqa: BLE001 - no database or no tables yet
        return False


def spooled(path: Path) -> list[dict[str, Any]]:
    """The records a spool holds past its replay offset."""
    done = Path(str(path) + ".done")
    offset = int(done.read_text().strip() or 0) if done.exists() else 0
    with open(path, "rb") as fh:
        fh.seek(offset)
        return [json.loads(line)["record"] for line in fh if line.strip()]


def key(a: dict[str, Any]) -> tuple:
    return a["type"], a["flow_id"], a["timestamp"], a["message"]


def rollups_count_each_once(url: str, alerts: list[dict[str, Any]]) -> None:
    """As the upgraded dashboard sees them: it catches up a storm's pending source roll-ups
    (SQLite) first; an older one refuses the store."""
    if not is_postgres(url):
        from wirewatch.store.deferred import catch_up_sources
        conn = sqlite3.connect(url, isolation_level=None)
        with upgraded():
            catch_up_sources(conn)
        conn.close()
    store = open_store(url)
    try:
        for table in ("alert_types", "alert_sources", "sensor_types", "sensor_sources", "source_activity"):
            assert int(store._value(f"SELECT coalesce(sum(count), 0) AS n FROM {table}")) == len(alerts), table
    finally:
        store.close()


def scans(first: int, count: int) -> list:
    """A capture of `count` SYN scans of VICTIM, 30 s of packet time apart, each its own source."""
    pkts = []
    for i in range(first, first + count):
        pkts += syn_scan(BASE_TS + 30 * i, f"10.9.0.{i + 1}", VICTIM, range(1000, 1040), gap=0.01)
    pkts += [(BASE_TS + 30 * (first + count) - 5, eth(IP(src="10.0.0.9", dst=VICTIM) / TCP(dport=80, flags="A")))]
    return pkts


def records_of(pkts: list, path: Path) -> tuple[bytes, list[bytes]]:
    """(pcap file header, each packet's record) of the packets written as a pcap."""
    data = Path(write_pcap(str(path), pkts)).read_bytes()
    at, out = 24, []
    while at < len(data):
        size = struct.unpack_from("<I", data, at + 8)[0]
        out.append(data[at:at + 16 + size])
        at += 16 + size
    return data[:24], out


def wait_until(check, what: str, limit: float = 30.0) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"no {what} within {limit} s")


def test_read_stops_writing_into_a_store_a_newer_wirewatch_migrated_underneath_it(tmp_path, store_url):
    """`read -` through a pipe: two scans, stored; the store moves ahead; two scans more. The
    writer stored nothing after the move (its spool holds every later alert and the stats
    event), said so in one line, exit 2; the upgraded writer then stores each alert once."""
    header, first = records_of(scans(0, 2), tmp_path / "a.pcap")
    _, second = records_of(scans(2, 2), tmp_path / "b.pcap")
    eve = tmp_path / "eve.json"
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "read", "-", "--db", store_url, "--logfile", str(eve),
                             "--quiet", "--no-progress", "--set", "general.batch_size=32",
                             "--set", f"store.state_dir={tmp_path}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdin is not None
    proc.stdin.write(header + b"".join(first))
    proc.stdin.flush()
    wait_until(lambda: any_stored(store_url), "alert stored")
    before = stored(store_url)
    version = migrate_ahead(store_url)
    out, err = (b.decode() for b in proc.communicate(b"".join(second), timeout=120))  # then the end of the capture
    assert proc.returncode == 2, err
    if is_postgres(store_url):
        (spool,) = tmp_path.glob("spool-*.jsonl")  # this sensor's (store.state_dir)
    else:
        spool = Path(store_url + ".spool")
    last = err.strip().splitlines()[-1]
    known = len((postgres_schema if is_postgres(store_url) else schema).MIGRATIONS)
    assert last.startswith("wirewatch: ") and (
        f": the store's schema is version {version}, newer than this wirewatch knows ({known}): a newer wirewatch "
        f"migrated it; stopped writing, ") in last and f"records kept in {spool} (an upgraded" in last, err
    assert "failed" not in err and "Traceback" not in err, err
    assert stored(store_url) == before  # nothing written after the move
    alerts = read_events(eve)
    assert len(alerts) >= 4 and len(before) < len(alerts)
    waiting = spooled(spool)
    assert [r["event_type"] for r in waiting].count("stats") == 1  # the run's final stats event
    assert sorted(map(key, before + [r for r in waiting if r["event_type"] != "stats"])) == sorted(map(key, alerts))
    with upgraded():
        if is_postgres(store_url):  # the upgraded writer's start stores the spool
            from wirewatch.store.postgres_sink import PostgresSink
            PostgresSink(store_url, str(spool)).close()
        else:
            store_sink(store_url, tmp_path).close()
    assert sorted(map(key, stored(store_url))) == sorted(map(key, alerts))  # each once
    rollups_count_each_once(store_url, alerts)


def test_a_writer_started_on_a_newer_store_refuses_in_one_line_and_keeps_its_spool(tmp_path, store_url):
    from wirewatch.store.spool import Spool
    store_sink(store_url, tmp_path).close()  # the store at this wirewatch's schema
    version = migrate_ahead(store_url)
    path = tmp_path / "spool.jsonl" if is_postgres(store_url) else Path(store_url + ".spool")
    Spool(str(path)).append([{"event_type": "alert", "type": "port_scan"}])  # left by an earlier run
    with pytest.raises(OSError) as exc:
        store_sink(store_url, tmp_path)
    assert f"the store's schema is version {version}, newer than this wirewatch knows" in str(exc.value)
    assert str(exc.value).endswith("this one does not write into it (upgrade it)") and "\n" not in str(exc.value)
    assert Spool(str(path)).pending == 1 and stored(store_url) == []


live = pytest.mark.skipif(not can_create_namespaces(), reason="live tests need root and iproute2")


@live
def test_a_live_sensor_stops_by_itself_when_its_store_moves_ahead(net, world):
    """`monitor` (as nobody, its store SQLite) under an nmap scan, then the store migrated by a
    newer wirewatch: at its next write (a stats event each second) the sensor stops by itself,
    exit 2 and one line; what it had not stored is in its spool, and the upgraded writer stores it."""
    from conftest import need
    need("nmap")
    db = world / "var" / "ww.db"
    m = Monitor(net, world, "--db", str(db))
    net.run(net.attacker, "nmap", "-sS", "-Pn", "-n", "-p", "1-200", "--max-retries", "0", net.sensor_ip, timeout=60)
    m.wait_for("port_scan", time.time())
    wait_until(lambda: any_stored(str(db)), "alert stored")
    before = stored(str(db))
    version = migrate_ahead(str(db))
    try:
        m.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        m.stop()
        pytest.fail("the sensor went on after its store moved ahead")
    out, err = m.proc.communicate(timeout=20)
    assert m.proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"wirewatch: {db}: the store's schema is version {version}, newer than this wirewatch "
                           f"knows ({len(schema.MIGRATIONS)})") and f"records kept in {db}.spool" in last, err
    assert "failed" not in err and "Traceback" not in err, err
    assert stored(str(db)) == before
    waiting = spooled(Path(f"{db}.spool"))
    assert waiting and waiting[-1]["event_type"] == "stats" and waiting[-1]["stats"]["final"] is True
    alerts = m.events()
    assert sorted(map(key, before + [r for r in waiting if r["event_type"] != "stats"])) == sorted(map(key, alerts))
    with upgraded():
        store_sink(str(db), world).close()
    assert sorted(map(key, stored(str(db)))) == sorted(map(key, alerts))
    rollups_count_each_once(str(db), alerts)


def test_a_write_during_a_migration_neither_waits_for_it_nor_lands_in_the_newer_schema(tmp_path, store_url):
    """A newer wirewatch migrating (its transaction open: SQLite's write lock, PostgreSQL's
    migration lock held): the writer's batch is retried, then spooled, within about a second
    (the capture loop never waits for a migration); once the migration commits, the next write
    finds the newer schema and the writer stops, the batch still in the spool. Nothing of either
    batch is in the store."""
    from dashboard_fixtures import fake_alert
    sink = store_sink(store_url, tmp_path)
    sink.write([fake_alert(0)])  # stored: the store at this wirewatch's schema
    if is_postgres(store_url):
        other = connect(store_url)
        other.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        other.execute("CREATE TABLE next_release (x INTEGER)")
        other.execute("UPDATE schema_version SET version = %s", (len(postgres_schema.MIGRATIONS) + 1,))
    else:
        other = sqlite3.connect(store_url, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("CREATE TABLE next_release (x INTEGER)")
        other.execute(f"UPDATE schema_version SET version = {len(schema.MIGRATIONS) + 1}")
    start = time.monotonic()
    sink.write([fake_alert(i) for i in range(1, 4)])
    assert time.monotonic() - start < 2.5 and sink.delivery.spool.pending == 3 and not sink.halted()
    assert sink.delivery.last_error == ("MigrationRunning: a wirewatch is migrating the store" if is_postgres(store_url)
                                        else "OperationalError: database is locked")
    other.commit()
    other.close()
    time.sleep(sink.delivery._next_probe - sink.delivery.clock() + 0.05)  # the next probe of the store is due
    sink.write([fake_alert(4)])
    assert "newer than this wirewatch knows" in sink.halted() and sink.delivery.spool.pending == 4
    sink.close()
    assert [a["flow_id"] for a in stored(store_url)] == [fake_alert(0)["flow_id"]]


def filled(url: str, tmp_path: Path, first: int = 0, count: int = 3) -> list[dict[str, Any]]:
    """The store holding the alerts of `count` crafted SYN scans (port_scan alerts), as this
    wirewatch's sensor writes them; returns the alerts."""
    from conftest import run_packets
    alerts, _ = run_packets(tmp_path, scans(first, count), name=f"scans{first}.pcap")
    assert len(alerts) >= count
    sink = store_sink(url, tmp_path)
    sink.write(alerts)
    sink.close()
    return alerts


def fts_done(path: str) -> int:
    """How far the SQLite store's full-text index got (the dashboard writes it)."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT last_id FROM alerts_fts_done").fetchone()[0])
    finally:
        conn.close()


def test_an_older_dashboard_refuses_a_newer_store_in_one_line(tmp_path, store_url):
    """`wirewatch dashboard --db` on a store a newer wirewatch migrated: one line naming the store
    and both versions, exit 2, before it writes anything (an older dashboard indexed the
    alerts for search and caught up roll-ups in a schema it does not know, then served)."""
    filled(store_url, tmp_path)
    version = migrate_ahead(store_url)
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "dashboard", "--db", store_url, "--port", str(free_port()),
                             "--set", f"store.state_dir={tmp_path}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": SRC, "WIREWATCH_WEB__TOKEN": "x" * 43})
    try:
        _, err = (b.decode() for b in proc.communicate(timeout=30))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the dashboard served a store a newer wirewatch migrated")
    known = len(postgres_schema.MIGRATIONS if is_postgres(store_url) else schema.MIGRATIONS)
    where = postgres_schema.shown(store_url) if is_postgres(store_url) else store_url
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert err == (f"wirewatch: {where}: the store's schema is version {version}, newer than this wirewatch knows "
                   f"({known}): a newer wirewatch migrated it; the dashboard does not open it (upgrade it)\n")
    if not is_postgres(store_url):
        assert fts_done(store_url) == 0  # nothing indexed


def test_an_older_tune_refuses_to_save_into_a_newer_store_before_its_pass(tmp_path, store_url):
    """`wirewatch tune CAPTURE --db` on a store a newer wirewatch migrated: refused in one line
    naming the store and both versions, exit 2, before the pass; no run saved (before, the run
    went into the newer schema's tune_runs)."""
    filled(store_url, tmp_path)
    version = migrate_ahead(store_url)
    pcap = write_pcap(str(tmp_path / "tune.pcap"), scans(5, 2))
    r = cli("tune", pcap, "--db", store_url, "--no-progress", "--set", f"store.state_dir={tmp_path}")
    known = len(postgres_schema.MIGRATIONS if is_postgres(store_url) else schema.MIGRATIONS)
    where = postgres_schema.shown(store_url) if is_postgres(store_url) else store_url
    assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr == (f"wirewatch: {where}: the store's schema is version {version}, newer than this wirewatch "
                        f"knows ({known}): a newer wirewatch migrated it; tune does not save its run into it "
                        "(upgrade it)\n")
    store = open_store(store_url)
    try:
        assert int(store._value("SELECT count(*) AS n FROM tune_runs")) == 0
    finally:
        store.close()


def test_the_dashboards_indexer_stops_writing_when_its_store_moves_ahead(tmp_path):
    """The long-running dashboard's indexer (search index and a storm's source roll-ups, every
    INDEX_EVERY_S): it indexes this wirewatch's alerts; a newer wirewatch migrates the store and
    writes alerts of its own; the indexer says so in one line naming the file and both versions,
    its thread ends, and it indexed none of the newer writer's alerts."""
    import io

    from wirewatch.store.search import Indexer
    db = str(tmp_path / "ww.db")
    first = filled(db, tmp_path)
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    log = io.StringIO()
    indexer = Indexer(conn, every_s=0.05, where=db, log=log).start()
    try:
        wait_until(lambda: fts_done(db) == len(first), "this wirewatch's alerts indexed")
        version = migrate_ahead(db)
        with upgraded():
            later = filled(db, tmp_path, first=10, count=2)  # the newer wirewatch's sensor
        indexer.thread.join(timeout=10)
        assert not indexer.thread.is_alive()
    finally:
        indexer.stop.set()
        conn.close()
    assert len(stored(db)) == len(first) + len(later) and fts_done(db) == len(first)
    assert log.getvalue() == (f"wirewatch dashboard: {db}: the store's schema is version {version}, newer than this "
                              f"wirewatch knows ({len(schema.MIGRATIONS)}): a newer wirewatch migrated it; the "
                              "dashboard's indexer stops writing roll-ups and the search index into it (upgrade it)\n")


def test_a_running_dashboards_triage_write_into_a_store_that_moved_ahead_is_refused(tmp_path, store_url):
    """A dashboard serving this wirewatch's store; a newer wirewatch migrates it; an acknowledge
    is answered 409 with the one line (store, both versions) and changes nothing."""
    from dashboard_fixtures import TOKEN, csrf, login

    from wirewatch.web import create_app
    filled(store_url, tmp_path)
    client = login(create_app(store_url, TOKEN).test_client())
    token = csrf(client)
    version = migrate_ahead(store_url)
    r = client.post("/api/alerts/ack", json={"ids": [1, 2]}, headers={"X-CSRF-Token": token})
    where = postgres_schema.shown(store_url) if is_postgres(store_url) else store_url
    known = len(postgres_schema.MIGRATIONS if is_postgres(store_url) else schema.MIGRATIONS)
    assert r.status_code == 409 and r.get_json() == {
        "error": f"{where}: the store's schema is version {version}, newer than this wirewatch knows ({known}): "
                 "a newer wirewatch migrated it; the dashboard does not open it (upgrade it)"}
    store = open_store(store_url)
    try:
        assert int(store._value("SELECT count(*) AS n FROM alerts WHERE acknowledged <> 0")) == 0
    finally:
        store.close()


def stamp(url: str, version: int) -> None:
    """Set the store's schema_version (its tables stay as they are)."""
    if is_postgres(url):
        with connect(url) as conn:
            conn.execute("UPDATE schema_version SET version = %s", (version,))
        return
    conn = sqlite3.connect(url, isolation_level=None)
    conn.execute("UPDATE schema_version SET version = ?", (version,))
    conn.close()


def version_of(url: str) -> int:
    store = open_store(url)
    try:
        return int(store._value("SELECT version AS n FROM schema_version"))
    finally:
        store.close()


def test_an_older_extract_refuses_a_newer_store_in_one_line_and_writes_nothing(tmp_path, store_url):
    """`wirewatch extract ALERT_ID --db` on a store a newer wirewatch migrated: one line naming the
    store and both versions, exit 2, no pcap written (before, it read the alert as if it knew the
    schema and wrote its packets, exit 0). The check is a reader's: a store stamped one version
    older is read as it is, not migrated (as extract always did: it opens the store read-only)."""
    env = {"WIREWATCH_STORE__STATE_DIR": str(tmp_path)}
    pcap = write_pcap(str(tmp_path / "scan.pcap"), scans(0, 1))
    r = cli("read", pcap, "--db", store_url, "--logfile", "", "--quiet", env=env)  # the sensor stores its alert
    assert r.returncode == 0, r.stderr
    known = len(postgres_schema.MIGRATIONS if is_postgres(store_url) else schema.MIGRATIONS)
    where = postgres_schema.shown(store_url) if is_postgres(store_url) else store_url
    stamp(store_url, known - 1)
    older = tmp_path / "older.pcap"
    r = cli("extract", "1", "--db", store_url, "-o", str(older), env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert older.stat().st_size > 24 and version_of(store_url) == known - 1  # read, not migrated
    stamp(store_url, known)
    version = migrate_ahead(store_url)
    out = tmp_path / "out.pcap"
    r = cli("extract", "1", "--db", store_url, "-o", str(out), env=env)
    assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr == (f"wirewatch: {where}: the store's schema is version {version}, newer than this wirewatch knows "
                        f"({known}): a newer wirewatch migrated it; extract does not read it (upgrade it)\n")
    assert not out.exists() and version_of(store_url) == version
