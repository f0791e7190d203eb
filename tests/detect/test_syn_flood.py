"""syn_flood: random-source floods at threshold, repeat sources named, completed handshakes silent,
bounded state."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, many, syn, types
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from wirewatch.schema import format_ts


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


@pytest.mark.parametrize("v", [4, 6])
def test_host_count_survives_a_scan_that_fills_the_victims_table(tmp_path, v):
    """A port scan, then a flood of one port of the same host, as on the benchmark's mixed capture:
    each second's scan brings more new (host, port) keys than the victims' table holds
    (max_targets 64; every port probed twice, so each key passes the doorkeeper). The host's key,
    the heaviest entry, stays and keeps counting: host_syns holds every SYN the top source sent
    within the window, other_sources_syns is 0. Before, a batch of new keys that alone filled 3/4
    of the table evicted the whole table, the host's key with it: host_syns counted from the
    flood's slice (500) while the top source had all of them."""
    scanner, victim = ADDRS[v][0], host(v, 0)
    pkts = []
    for second, base in ((0, 1000), (1, 2000)):  # a probe and its retransmission per port
        pkts += [syn(v, scanner, victim, 40000, base + i, T0 + second + i * 0.004 + k * 0.001)
                 for i in range(200) for k in (0, 1)]
    pkts += [syn(v, scanner, victim, 30000 + i, 80, T0 + 2 + i * 0.001) for i in range(500)]  # second 2
    alerts, engine = run_packets(tmp_path, pkts, {"detect.syn_flood.max_targets": 64})
    ev = types(alerts)["syn_flood"][0]["evidence"]
    assert ev["scope"] == "host and port" and ev["syns"] == 500
    assert ev["top_sources"] == [{"src_ip": scanner, "syns": 1300}]
    assert ev["host_syns"] == 1300 and ev["other_sources_syns"] == 0
    assert engine.summary()["detector_state"]["syn_flood_targets_evicted"] > 0  # the table was full


def test_a_scans_one_syn_per_port_leaves_no_victim_state_and_a_flood_counts_every_syn(tmp_path):
    """The doorkeeper in front of the victims' table: 2000 ports probed once each take no entry
    (each would cost ~1.5 KB: the distinct-source registers), and a flood's key enters at its
    second SYN with its first: the alert counts all 500 SYNs, all 500 sources, and its first SYN."""
    scanner, victim = ADDRS[4][0], host(4, 0)
    pkts = [syn(4, scanner, victim, 40000, 1000 + i, T0 + i * 0.0005) for i in range(2000)]
    pkts += [syn(4, many(4, i), victim, 30000 + i, 80, T0 + 2 + i * 0.001) for i in range(500)]
    alerts, engine = run_packets(tmp_path, pkts)
    state = engine.summary()["detector_state"]
    assert state["syn_flood_targets_seen_once"] >= 2000 and state["syn_flood_targets_keys"] <= 3
    assert state["syn_flood_targets_evicted"] == 0
    ev = types(alerts)["syn_flood"][0]["evidence"]
    assert ev["scope"] == "host and port" and ev["syns"] == 500
    assert abs(ev["distinct_sources"] - 500) <= 0.1 * 500
    assert ev["first_seen"] == format_ts(T0 + 2)


def test_a_host_entry_evicted_within_the_window_says_since_when_it_counts(tmp_path):
    """The victims' table (max_targets 16) fills with 20 busier hosts while one source's SYNs to
    the victim are held by the sources' table: the victim's host entry is evicted and made again
    by the flood. Its count (the flood's 450) is below that source's 550 within the window: the
    evidence says since when host_syns counts (host_syns_since, the flood's first SYN) and gives no
    other_sources_syns (null) rather than a negative one."""
    a, victim = ADDRS[4][0], host(4, 0)
    pkts = [syn(4, a, victim, 40000 + i, 80, T0 + i * 0.001) for i in range(100)]  # second 0: 100 SYNs
    pkts += [syn(4, many(4, 1000 + i), host(4, 10 + h), 1024 + i, 443, T0 + 1 + (h * 200 + i) * 0.0002)
             for h in range(20) for i in range(200)]  # second 1: 20 hosts of 200 SYNs each
    pkts += [syn(4, a, victim, 30000 + i, 80, T0 + 2 + i * 0.001) for i in range(450)]  # second 2
    ev = [x for x in types(run_packets(tmp_path, pkts, {"detect.syn_flood.max_targets": 16})[0])["syn_flood"]
          if x["dest_ip"] == victim][0]["evidence"]
    assert ev["top_sources"] == [{"src_ip": a, "syns": 550}]
    assert ev["host_syns"] == 450 and ev["other_sources_syns"] is None
    assert ev["host_syns_since"] == ev["first_seen"]
