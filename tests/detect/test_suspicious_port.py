"""suspicious_port: attempts to watched ports, from the initiator only; the list can be replaced."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, ip, many, syn, types
from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether


@pytest.mark.parametrize("v", [4, 6])
def test_suspicious_port(tmp_path, v):
    pkts = [syn(v, ADDRS[v][0], host(v, 0), 5000, 4444, T0), syn(v, ADDRS[v][0], host(v, 0), 5001, 4445, T0 + 1),
            (T0 + 2, Ether(dst="02:00:00:00:00:02") / ip(v, host(v, 0), ADDRS[v][0]) / TCP(sport=4444, dport=5000, flags="SA"))]
    fired = types(run_packets(tmp_path, pkts)[0])["suspicious_port"]
    assert [a["message"] for a in fired] == [f"Suspicious TCP connection from {ADDRS[v][0]} to port 4444"]


def test_suspicious_port_list_replaced(tmp_path):
    pkts = [syn(4, "10.1.0.5", "10.1.0.1", 5000, 4444, T0), syn(4, "10.1.0.5", "10.1.0.1", 5000, 8888, T0 + 1)]
    fired = types(run_packets(tmp_path, pkts, {"detect.suspicious_port.ports": [8888]})[0])["suspicious_port"]
    assert [a["dest_port"] for a in fired] == [8888]


def test_suspicious_port_flood_of_sources_keeps_no_state_and_bounded_dedup(tmp_path):
    """suspicious_port keeps only its capped table of known connections (for mid-stream
    sessions); what a flood of 10x the identifier cap of forged sources grows is the alert
    manager's dedup memory, and that stays capped too."""
    cap = 16
    pkts = [syn(4, many(4, i), "10.1.0.1", 5000, 4444, T0 + i * 0.001) for i in range(10 * cap)]
    # storm control off: with it, these 160 sources are one aggregate (tests/test_storm.py)
    alerts, engine = run_packets(tmp_path, pkts, {"alerts.max_identifiers": cap, "detect.suspicious_port.max_sessions": cap,
                                                  "alerts.storm_sources": 0})
    assert len(alerts) == 10 * cap and {a["dest_port"] for a in alerts} == {4444}
    state = engine.summary()["detector_state"]
    assert state["suspicious_port_sessions"] <= cap and state["suspicious_port_sessions_evicted"] >= 9 * cap - cap
    assert len(engine.alerts.seen) == cap and engine.alerts.evicted == 9 * cap
