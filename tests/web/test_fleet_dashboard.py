"""The fleet dashboard over SQLite and over a real PostgreSQL server: three sensors'
alerts (corpus captures read with different general.sensor), per-sensor health, the
sensor filter, incidents, and mutes reaching a running sensor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import CORPUS
from dashboard_fixtures import TOKEN, csrf, login
from pg_server import PgServer

from wirewatch.store.queries import open_store
from wirewatch.web import create_app

SENSORS = {"edge-a": "dev01_nmap_syn_top100.pcap", "edge-b": "dev04_nmap_xmas.pcap",
           "edge-c": "dev23_mixed_http_dns_with_synscan.pcap"}
SHARED = "dev17_suspicious_ports.pcap"  # the same attacker seen by two sensors


@pytest.fixture(scope="module")
def pg():
    server = PgServer()
    yield server
    server.close()


def read_into(db: str, sensor: str, *pcaps: str, state: str) -> None:
    r = subprocess.run([sys.executable, "-m", "wirewatch", "read", *(str(CORPUS / p) for p in pcaps), "--db", db,
                        "--sensor", sensor, "--logfile", "", "--quiet", "--no-progress",
                        "--set", f"store.state_dir={state}"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "WIREWATCH_OUTPUT__DB": ""})
    assert r.returncode == 0, r.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet(request, tmp_path):
    if request.param == "sqlite":
        db = str(tmp_path / "ww.db")
    else:
        db = request.getfixturevalue("pg").create_database(f"fleet_{os.getpid()}_{time.monotonic_ns()}")
    for sensor, pcap in SENSORS.items():
        extra = (SHARED,) if sensor in ("edge-a", "edge-b") else ()
        read_into(db, sensor, pcap, *extra, state=str(tmp_path))
    return db


def stored(db: str) -> list[dict]:
    store = open_store(db)
    try:
        rows = store._rows("SELECT sensor, type, src_ip, muted FROM alerts")
    finally:
        store.close()
    return rows


def test_every_sensor_shows_with_its_health(fleet):
    c = login(create_app(fleet, TOKEN).test_client())
    data = c.get("/api/sensors").get_json()
    by_name = {s["sensor"]: s for s in data["sensors"]}
    assert sorted(by_name) == sorted(SENSORS)
    rows = stored(fleet)
    for name, s in by_name.items():
        assert s["packets"] > 0 and s["decode_errors"] == 0 and s["kernel_drops"] == 0 and not s["quiet"]
        assert s["alerts"] == sum(1 for r in rows if r["sensor"] == name and not r["muted"]) > 0
    page = c.get("/sensors").get_data(as_text=True)
    assert 'id="sensor-table"' in page
    store = open_store(fleet)
    try:  # an hour later without a stats event, every sensor is marked quiet
        assert all(s["quiet"] for s in store.sensors(now=time.time() + 3600))
    finally:
        store.close()


def test_sensor_filter_on_alerts_and_charts(fleet):
    c = login(create_app(fleet, TOKEN).test_client())
    rows = stored(fleet)
    for name in SENSORS:
        mine = [r for r in rows if r["sensor"] == name]
        listed = c.get(f"/api/alerts?sensor={name}&limit=500").get_json()["alerts"]
        assert len(listed) == len(mine) and {a["sensor"] for a in listed} == {name}
        o = c.get(f"/api/overview?sensor={name}").get_json()
        types: dict[str, int] = {}
        for r in mine:
            types[r["type"]] = types.get(r["type"], 0) + 1
        assert o["alerts_by_type"] == types and o["total_alerts"] == len(mine)
        assert sum(p["alerts"] for p in o["alerts_per_minute"]) == len(mine)
        assert o["health"]["sensor"] == name and o["health"]["packets"] > 0
    everything = c.get("/api/overview").get_json()
    assert everything["total_alerts"] == len(rows)
    assert f'<option>{"edge-b"}</option>' in c.get("/alerts").get_data(as_text=True)


def test_incidents_group_a_source_across_detectors_and_sensors(fleet):
    c = login(create_app(fleet, TOKEN).test_client())
    rows = [r for r in stored(fleet) if r["src_ip"]]
    incidents = {i["src_ip"]: i for i in c.get("/api/incidents").get_json()["incidents"]}
    sources = {r["src_ip"] for r in rows}
    assert set(incidents) == sources
    for ip, inc in incidents.items():
        mine = [r for r in rows if r["src_ip"] == ip]
        assert inc["alerts"] == len(mine)
        assert sorted(inc["sensors"]) == sorted({r["sensor"] for r in mine})
        assert sorted(inc["types"]) == sorted({r["type"] for r in mine})
        assert inc["first_seen"] <= inc["last_seen"]
    across = [i for i in incidents.values() if len(i["sensors"]) >= 2 and len(i["types"]) >= 2]
    assert across, incidents  # the shared attacker: several detectors on two sensors, one incident
    ip = across[0]["src_ip"]
    timeline = c.get(f"/api/incidents/{ip}").get_json()["alerts"]
    assert len(timeline) == across[0]["alerts"] and {a["sensor"] for a in timeline} == set(across[0]["sensors"])
    assert c.get(f"/incidents/{ip}").status_code == 200 and c.get("/incidents").status_code == 200
    edge_c = c.get("/api/incidents?sensor=edge-c").get_json()["incidents"]
    assert edge_c and all("edge-c" in i["sensors"] for i in edge_c)
    assert c.get("/api/incidents/not-an-ip").status_code == 400


def test_a_dashboard_mute_reaches_a_running_sensor(fleet, tmp_path):
    from wirewatch import config
    from wirewatch.commands.outputs import output_sinks
    cfg = config.build([("output", "db", fleet, "test"), ("store", "state_dir", str(tmp_path), "test"),
                        ("general", "sensor", "edge-a", "test")])
    (sink,) = output_sinks(cfg)
    try:
        alert = json.loads(open_store(fleet)._rows("SELECT record FROM alerts WHERE sensor = 'edge-a' LIMIT 1")[0]
                           ["record"])
        assert not sink.filter([dict(alert)])[0].get("muted")
        c = login(create_app(fleet, TOKEN).test_client())
        r = c.post("/api/mutes", json={"type": alert["type"], "cidr": alert["src_ip"], "hours": 1},
                   headers={"X-CSRF-Token": csrf(c)})
        assert r.status_code == 201
        deadline = time.time() + 5
        while not sink.filter([dict(alert)])[0].get("muted"):
            assert time.time() < deadline, "the mute did not reach the sensor within 5 s"
            time.sleep(0.2)
    finally:
        sink.close()
