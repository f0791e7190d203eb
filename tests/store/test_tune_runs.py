"""`wirewatch tune --db` saves its run into the store (SQLite and a real PostgreSQL server):
the document `--format json` prints, whole, with its time, sensor and capture names, read
back newest first by the dashboard's queries; a store from before the table gains it."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
from conftest import CORPUS, cli
from pg_server import PgServer

from wirewatch.store import schema
from wirewatch.store.queries import open_store
from wirewatch.store.tune_runs import capture_names, save_run

SCAN = str(CORPUS / "dev01_nmap_syn_top100.pcap")
SWEEP = str(CORPUS / "dev07_nmap_ping_sweep.pcap")


def tune_into(db: str, *args: str, env: dict | None = None) -> tuple[dict, str]:
    r = cli("tune", "--format", "json", "--no-progress", "--sensor", "tuner", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def stored_runs(db: str) -> tuple[list[dict], list[dict]]:
    store = open_store(db)
    try:
        runs = store.tune_runs()
        return runs, [store.tune_run(r["id"]) for r in runs]
    finally:
        store.close()


def check_saved(db: str) -> None:
    before = time.time()
    first, err = tune_into(db, SCAN, "--db", db, "--detector", "port_scan")
    assert "wirewatch: tune run 1 saved to" in err and "/tune?run=1" in err, err
    second, _ = tune_into(db, SCAN, SWEEP, "--db", db, "--baseline", SWEEP)
    runs, full = stored_runs(db)
    assert [r["id"] for r in runs] == [2, 1]  # newest first
    assert full[0]["document"] == second and full[1]["document"] == first  # the printed document, whole
    assert runs[1]["captures"] == ["dev01_nmap_syn_top100.pcap"]
    assert runs[0]["captures"] == ["dev01_nmap_syn_top100.pcap", "dev07_nmap_ping_sweep.pcap",
                                   "dev07_nmap_ping_sweep.pcap"]  # the baseline's capture too
    assert runs[0]["packets"] == second["packets"] > 0 and runs[0]["sensor"] == "tuner"
    assert before <= runs[1]["created"] <= runs[0]["created"] <= time.time()
    assert [t["detector"] for t in full[1]["document"]["thresholds"]] == ["port_scan"]


def test_tune_with_db_saves_the_run_into_sqlite(tmp_path):
    check_saved(str(tmp_path / "store" / "ww.db"))


def test_the_configured_store_is_used_and_no_store_saves_nothing(tmp_path):
    db = str(tmp_path / "ww.db")
    _, err = tune_into(db, SCAN, env={"WIREWATCH_OUTPUT__DB": db})
    assert "tune run 1 saved" in err
    _, err = tune_into(db, SCAN)  # conftest.cli: output.db empty
    assert "saved" not in err
    assert [r["id"] for r in stored_runs(db)[0]] == [1]


def test_an_unwritable_store_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not a database" * 100)
    r = cli("tune", SCAN, "--no-progress", "--db", str(bad))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "cannot save the tune run" in lines[0], r.stderr


def test_a_store_from_before_the_table_gains_it_and_keeps_its_alerts(tmp_path):
    db = str(tmp_path / "old.db")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (0)")
    for script in schema.MIGRATIONS[:6]:  # the store as version 6 left it
        conn.executescript(f"BEGIN; {script}; COMMIT;")
    conn.execute("UPDATE schema_version SET version = 6")
    conn.execute("INSERT INTO stats (ts, record) VALUES (1, '{}')")
    conn.close()
    run_id = save_run(db, {"captures": ["/x/a.pcap"], "packets": 7, "thresholds": [], "untuned": []}, "s1", 1000.0)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(schema.MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM stats").fetchone()[0] == 1
    conn.close()
    runs, full = stored_runs(db)
    assert runs == [{"id": run_id, "created": 1000.0, "sensor": "s1", "captures": ["a.pcap"], "packets": 7}]
    assert full[0]["document"]["captures"] == ["/x/a.pcap"]


def test_capture_names_are_file_names():
    doc = {"captures": ["/a/b/one.pcap", "two.pcap.xz"], "baseline": {"captures": ["../base.pcapng"]}}
    assert capture_names(doc) == ["one.pcap", "two.pcap.xz", "base.pcapng"]


@pytest.fixture(scope="module")
def pg():
    server = PgServer()
    yield server
    server.close()


def test_tune_with_db_saves_the_run_into_postgresql(pg):
    check_saved(pg.create_database(f"tune_{os.getpid()}_{time.monotonic_ns()}"))


def test_the_dashboard_serves_runs_saved_in_postgresql(pg):
    from dashboard_fixtures import TOKEN, login

    from wirewatch.web import create_app
    url = pg.create_database(f"tuneweb_{os.getpid()}_{time.monotonic_ns()}")
    doc, _ = tune_into(url, SCAN, "--db", url)
    c = login(create_app(url, TOKEN).test_client())
    runs = c.get("/api/tune").get_json()["runs"]
    assert [r["id"] for r in runs] == [1] and runs[0]["captures"] == ["dev01_nmap_syn_top100.pcap"]
    assert c.get("/api/tune/1").get_json()["document"] == doc
    r = c.get("/api/tune/2")
    assert r.status_code == 404 and r.get_json()["error"].startswith("id:")
