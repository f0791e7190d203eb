"""Storm control (alerts.py + storm.py): many forged sources against one watched port are one
aggregate alert naming the destination and the number of sources, not one alert per source;
where they are a SYN flood's, the flood's alert holds them (correlate) and no storm is needed."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
from conftest import cli, decode_file, read_alerts, run_file

from wirewatch.addr import addr_strs
from wirewatch.craft import write_syn_storm


def sources_in(path: str) -> set[str]:
    b = decode_file(path)
    return set(addr_strs(b.src_hi, b.src_lo))


def test_200k_spoofed_syns_to_a_watched_port_are_the_floods_few_alerts_accusing_nobody(tmp_path):
    """A forged-source SYN flood against a watched port: each forged source's one SYN to it is the
    flood's (correlate: watched_ports_touched), not a suspicious_port alert or storm of its own;
    every alert names the destination and the number of sources, none a forged source."""
    pcap = write_syn_storm(str(tmp_path / "storm.pcap"), 200_000, "10.0.0.2", 4444, duration=20.0)
    truth = sources_in(pcap)
    assert len(truth) == 200_000  # the capture itself: every SYN has its own source
    log, db = tmp_path / "a.json", tmp_path / "a.db"
    r = cli("read", pcap, "--logfile", str(log), "--db", str(db), "--quiet", "--format", "json")
    assert r.returncode == 0, r.stderr
    alerts = [a for a in read_alerts(log) if a["event_type"] == "alert"]
    assert 1 <= len(alerts) <= 20
    for a in alerts:
        assert a.get("dest_ip") == "10.0.0.2" and "10.0.0.2" in a["message"]
        assert a.get("src_ip") is None  # nobody accused: the sources are forged
        n = a["evidence"]["distinct_sources"]
        assert f"{n:,} source" in a["message"] or f"({n} source" in a["message"]
    assert {a["type"] for a in alerts} == {"syn_flood"}
    assert all(a["evidence"]["watched_ports_touched"] == [4444] for a in alerts)
    # the flood's figure is its window's: 10 s of a 20 s flood at an even rate hold half the sources
    most = max(a["evidence"]["distinct_sources"] for a in alerts)
    assert abs(most - len(truth) / 2) <= 0.02 * len(truth) / 2  # HyperLogLog above 65,536
    with sqlite3.connect(db) as conn:  # the store holds exactly what the log holds
        assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == len(alerts)
    summary = json.loads(r.stdout)["alert_manager"]
    assert summary["correlated_probes"] == 200_000 and summary["storm_folded_alerts"] == 0  # the flood's, each


def test_below_the_storm_limit_each_source_is_its_own_alert(tmp_path):
    pcap = write_syn_storm(str(tmp_path / "few.pcap"), 10, "10.0.0.2", 4444, duration=2.0)
    alerts, engine = run_file(pcap)
    ports = [a for a in alerts if a["type"] == "suspicious_port"]
    assert sorted(a.get("src_ip") for a in ports) == sorted(sources_in(pcap))
    assert engine.alerts.storm.storms == 0


def test_one_source_more_than_the_limit_folds_and_the_limit_is_configurable(tmp_path):
    pcap = write_syn_storm(str(tmp_path / "eleven.pcap"), 11, "10.0.0.2", 4444, duration=2.0)
    alerts, engine = run_file(pcap)
    ports = [a for a in alerts if a["type"] == "suspicious_port"]
    # all 11 in one time slice: the slice already exceeds the limit, so no single alerts
    assert len(ports) == 1 and ports[0]["evidence"]["distinct_sources"] == 11
    alerts, engine = run_file(pcap, {"alerts.storm_sources": 0})  # off
    assert len([a for a in alerts if a["type"] == "suspicious_port"]) == 11
    alerts, engine = run_file(pcap, {"alerts.storm_sources": 11})
    assert len([a for a in alerts if a["type"] == "suspicious_port"]) == 11


def test_storm_aggregate_repeats_at_most_once_per_cooldown(tmp_path):
    # 3,000 sources spread over 100 s: the storm lasts longer than three cooldowns of 30 s
    pcap = write_syn_storm(str(tmp_path / "long.pcap"), 3_000, "10.0.0.2", 4444, duration=100.0)
    log = tmp_path / "a.json"
    r = cli("read", pcap, "--logfile", str(log), "--quiet")
    assert r.returncode == 0, r.stderr
    storm = [a for a in read_alerts(log) if a["type"] == "suspicious_port" and a["evidence"].get("storm")]
    plain = [a for a in read_alerts(log) if a["type"] == "suspicious_port" and not a["evidence"].get("storm")]
    assert plain == []
    ts = np.array([np.datetime64(a["timestamp"][:26]) for a in storm], "datetime64[us]")
    gaps = np.diff(ts).astype(np.int64) / 1e6
    escalated = np.array(["escalated_from" in a for a in storm[1:]])
    final = np.array([bool(a["evidence"].get("final")) for a in storm[1:]])
    assert (gaps[~escalated & ~final] >= 30.0).all()  # a plain update waits a cooldown
    assert storm[-1]["evidence"]["distinct_sources"] == 3_000
