"""general.sensor: every alert and stats event names the sensor that saw it (EVE `host`)."""

from __future__ import annotations

import json
import socket
import sqlite3

from conftest import CORPUS, cli, read_alerts, run_file

PCAP = str(CORPUS / "dev01_nmap_syn_top100.pcap")


def test_every_alert_carries_the_configured_sensor(tmp_path):
    log = tmp_path / "alerts.json"
    r = cli("read", PCAP, "--sensor", "edge-1", "--logfile", str(log), "--quiet", "--no-progress")
    assert r.returncode == 0, r.stderr
    alerts = read_alerts(log)
    assert alerts and {a["host"] for a in alerts} == {"edge-1"}


def test_environment_names_the_sensor_and_stats_events_carry_it(tmp_path):
    db = tmp_path / "ww.db"
    r = cli("read", PCAP, "--logfile", "", "--db", str(db), "--quiet", "--no-progress",
            env={"WIREWATCH_GENERAL__SENSOR": "branch-office"})
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(db)
    stats = [json.loads(rec) for (rec,) in conn.execute("SELECT record FROM stats")]
    alerts = [json.loads(rec) for (rec,) in conn.execute("SELECT record FROM alerts")]
    assert stats and {s["host"] for s in stats} == {"branch-office"}
    assert alerts and {a["host"] for a in alerts} == {"branch-office"}


def test_default_sensor_is_the_host_name():
    alerts, _ = run_file(PCAP)
    assert alerts and {a["host"] for a in alerts} == {socket.gethostname()}
