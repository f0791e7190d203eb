"""AlertManager: repeats within the cooldown are suppressed, counted, and reported with the next alert."""

from __future__ import annotations

from conftest import run_packets
from crafted import T0, scan, syn


def test_cooldown_suppresses_and_reports_count(tmp_path):
    pkts = [syn(4, "10.1.0.5", "10.1.0.1", 5000 + i, 4444, T0 + i * 5) for i in range(8)]  # every 5 s for 35 s
    alerts, engine = run_packets(tmp_path, pkts, {"alerts.cooldown": 30.0})
    assert len(alerts) == 2 and alerts[1]["evidence"]["suppressed_since_last"] == 5
    summary = engine.summary()
    assert summary["suppressed"] == {"suspicious_port": 6}  # 5 before the second alert, 1 after
    assert summary["suppressed_pending"] == [{"type": "suspicious_port", "identifier": ["10.1.0.5", "10.1.0.1", "TCP", "4444"],
                                              "suppressed": 1}]


def test_disabled_detector_is_silent(tmp_path):
    assert run_packets(tmp_path, scan(4, 30), {"detect.port_scan.enabled": False})[0] == []
