"""syn_flood: random-source floods at threshold, repeat sources named, completed handshakes silent,
bounded state."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, many, syn, types
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether


def flood(v, n, random_sources=True):
    return [syn(v, many(v, i) if random_sources else ADDRS[v][0], host(v, 0), 1024 + i % 60000, 80, T0 + i * 0.001)
            for i in range(n)]


@pytest.mark.parametrize("v", [4, 6])
def test_syn_flood_threshold_random_sources(tmp_path, v):
    assert "syn_flood" not in types(run_packets(tmp_path, flood(v, 399))[0])
    fired = types(run_packets(tmp_path, flood(v, 400))[0])["syn_flood"]
    ev = fired[0]["evidence"]
    assert fired[0]["dest_ip"] == host(v, 0) and abs(ev["distinct_sources"] - 400) <= 40 and ev["completion_ratio"] == 0
    assert ev["top_sources"] == [] and ev["peak_syn_per_s"] >= 400  # every source sent one SYN


def test_syn_flood_top_sources_are_the_repeaters(tmp_path):
    pkts = flood(4, 400) + [syn(4, "10.1.0.66", host(4, 0), 2000 + i, 80, T0 + 0.4 + i * 0.001) for i in range(50)]
    ev = types(run_packets(tmp_path, pkts)[0])["syn_flood"][0]["evidence"]
    assert ev["top_sources"][0] == {"src_ip": "10.1.0.66", "syns": 50}


def test_syn_flood_silent_when_handshakes_complete(tmp_path):
    pkts = []
    for i in range(450):
        c, s = many(4, i), "10.1.0.1"
        t = T0 + i * 0.002
        pkts += [syn(4, c, s, 2000, 80, t),
                 (t + 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src=s, dst=c) / TCP(sport=80, dport=2000, flags="SA")),
                 (t + 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=c, dst=s) / TCP(sport=2000, dport=80, flags="A"))]
    assert "syn_flood" not in types(run_packets(tmp_path, pkts)[0])


def test_syn_flood_state_bounded(tmp_path):
    alerts, engine = run_packets(tmp_path, flood(4, 640), {"detect.syn_flood.max_sources": 64,
                                                            "detect.failed_handshake.max_attempts": 64})
    assert "syn_flood" in types(alerts)
    st = engine.summary()["detector_state"]
    assert st["syn_flood_sources_keys"] <= 64 and st["syn_flood_sources_seen_once"] >= 500  # one SYN: no state
    assert st["handshakes_tracked"] <= 64 and st["handshakes_evicted"] > 0


def test_near_miss_names_the_victim_without_a_source(tmp_path):
    """300 of 400 incomplete SYNs from random sources: no alert, one near miss keyed by the victim
    (its port key, not also its host's), `src_ip` absent. Answered SYNs (a busy server) are none."""
    alerts, engine = run_packets(tmp_path, flood(4, 300))
    assert "syn_flood" not in types(alerts)
    near = [n for n in engine.near_misses() if n["detector"] == "syn_flood"]
    assert near == [{"detector": "syn_flood", "dest_ip": host(4, 0), "dest_port": 80, "figure": 300, "threshold": 400,
                     "fraction": 0.75, "unit": "incomplete SYNs", "window": 10.0,
                     "text": f"to {host(4, 0)} port 80: 300 of 400 incomplete SYNs in 10 s"}]
    pkts = []
    for i in range(300):
        c, s, t = many(4, i), host(4, 0), T0 + i * 0.002
        pkts += [syn(4, c, s, 2000, 80, t),
                 (t + 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src=s, dst=c) / TCP(sport=80, dport=2000, flags="SA")),
                 (t + 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=c, dst=s) / TCP(sport=2000, dport=80, flags="A"))]
    _, engine = run_packets(tmp_path, pkts, name="served.pcap")
    assert not [n for n in engine.near_misses() if n["detector"] == "syn_flood"]
