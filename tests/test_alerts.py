"""AlertManager: repeats within the cooldown are suppressed, counted, and reported with the next alert."""

from __future__ import annotations

from conftest import run_packets
from crafted import T0, many, syn


def test_cooldown_suppresses_and_reports_count(tmp_path):
    pkts = [syn(4, "10.1.0.5", "10.1.0.1", 5000 + i, 4444, T0 + i * 5) for i in range(8)]  # every 5 s for 35 s
    alerts, engine = run_packets(tmp_path, pkts, {"alerts.cooldown": 30.0})
    assert len(alerts) == 2 and alerts[1]["evidence"]["suppressed_since_last"] == 5
    summary = engine.summary()
    assert summary["suppressed"] == {"suspicious_port": 6}  # 5 before the second alert, 1 after
    assert summary["suppressed_pending"] == [{"type": "suspicious_port", "identifier": ["10.1.0.5", "10.1.0.1", "TCP", "4444"],
                                              "suppressed": 1}]


def test_identifiers_are_capped_least_recent_first(tmp_path):
    cap = 16
    pkts = [syn(4, many(4, i), "10.1.0.1", 5000, 4444, T0 + i * 0.01) for i in range(10 * cap)]
    pkts.append(syn(4, many(4, 10 * cap - 1), "10.1.0.1", 5001, 4444, T0 + 5))  # the newest: still remembered
    pkts.append(syn(4, many(4, 0), "10.1.0.1", 5001, 4444, T0 + 6))  # the oldest: forgotten, alerts again
    # storm control off: with it, these forged sources are one aggregate (tests/test_storm.py)
    alerts, engine = run_packets(tmp_path, pkts, {"alerts.max_identifiers": cap, "alerts.storm_sources": 0})
    assert len(alerts) == 10 * cap + 1 and alerts[-1]["src_ip"] == many(4, 0)
    assert engine.summary()["suppressed"] == {"suspicious_port": 1}
    assert len(engine.alerts.seen) == cap and engine.alerts.evicted == 10 * cap + 1 - cap
