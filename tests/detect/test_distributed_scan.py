"""distributed_scan: several sources sharing one host's ports; a lone scanner is port_scan's."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, many, scan, syn, types


def slices(v, sources, per):
    pkts = []
    for s in range(sources):
        src = ADDRS[v][1].format(100 + s)
        pkts += [syn(v, src, host(v, 0), 40000, 2000 + s * per + p, T0 + s * 0.5 + p * 0.01) for p in range(per)]
    return sorted(pkts, key=lambda p: p[0])


@pytest.mark.parametrize("v", [4, 6])
def test_distributed_scan_threshold(tmp_path, v):
    assert "distributed_scan" not in types(run_packets(tmp_path, slices(v, 2, 14) + slices(v, 1, 1)[:1])[0])
    alerts = types(run_packets(tmp_path, slices(v, 3, 10))[0])
    assert "port_scan" not in alerts
    ev = alerts["distributed_scan"][0]["evidence"]
    assert ev["distinct_ports"] == 30 and ev["sources"] == 3
    assert sorted(m["distinct_ports"] for m in ev["members"]) == [10, 10, 10]


def test_single_scanner_is_not_distributed(tmp_path):
    alerts = types(run_packets(tmp_path, scan(4, 40) + [syn(4, "10.1.0.7", host(4, 0), 5555, 80, T0 + 0.5)])[0])
    assert "port_scan" in alerts and "distributed_scan" not in alerts


def test_distributed_scan_state_bounded_under_a_flood_of_victims(tmp_path):
    cap = 32
    # 10x the victim cap, each probed twice by one source: every victim and pair takes state
    noise = [syn(4, "10.2.0.1", many(4, i // 2), 40000, 80 + i % 2, T0 + i * 0.0005) for i in range(20 * cap)]
    real = slices(4, 3, 10)
    alerts, engine = run_packets(tmp_path, sorted(noise + real, key=lambda p: p[0]),
                                 {"detect.distributed_scan.max_targets": cap, "detect.distributed_scan.max_probes": 8 * cap})
    assert [a["dest_ip"] for a in alerts if a["type"] == "distributed_scan"] == [host(4, 0)]
    st = engine.summary()["detector_state"]
    assert st["distributed_scan_ports_groups"] <= cap and st["distributed_scan_ports_items"] <= 8 * cap
    assert st["distributed_scan_members_groups"] <= 8 * cap
    assert st["distributed_scan_ports_evicted"] > 0 and st["distributed_scan_members_evicted"] > 0


def test_near_miss_names_the_victim_and_its_sources(tmp_path):
    """3 sources x 6 ports = 18 of 30: a near miss keyed by the victim, no `src_ip`; one source
    alone on 18 ports is port_scan's near miss, not this one's."""
    alerts, engine = run_packets(tmp_path, slices(4, 3, 6))
    assert "distributed_scan" not in types(alerts)
    near = [n for n in engine.near_misses() if n["detector"] == "distributed_scan"]
    assert near == [{"detector": "distributed_scan", "dest_ip": host(4, 0), "figure": 18, "threshold": 30,
                     "fraction": 0.6, "unit": "ports, probed by 3 sources", "window": 30.0,
                     "text": f"to {host(4, 0)}: 18 of 30 ports, probed by 3 sources in 30 s"}]
    _, engine = run_packets(tmp_path, scan(4, 18), name="one.pcap")
    assert [n["detector"] for n in engine.near_misses()] == ["port_scan"]
