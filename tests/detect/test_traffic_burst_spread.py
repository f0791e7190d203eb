"""traffic_burst_spread: floods from many (forged) sources name the victim; a busy server answering
many clients is not one."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import T0, many, types
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether


def spread(kind: str, n: int, reply: bool = False):
    pkts = []
    for i in range(n):
        t, src = T0 + i * 0.002, many(4, i)
        layer = {"icmp": ICMP(type=8), "udp": UDP(sport=1024 + i % 5000, dport=9000),
                 "tcp": TCP(sport=1024 + i % 5000, dport=80, flags="A")}[kind]
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / IP(src=src, dst="10.1.0.1") / layer))
        if reply:
            back = UDP(sport=9000, dport=1024 + i % 5000) if kind == "udp" else TCP(sport=80, dport=1024 + i % 5000, flags="A")
            pkts.append((t + 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst=src) / back))
    return pkts


@pytest.mark.parametrize("kind", ["icmp", "udp", "tcp"])
def test_random_source_flood_names_the_victim(tmp_path, kind):
    assert "traffic_burst" not in types(run_packets(tmp_path, spread(kind, 999))[0])
    fired = types(run_packets(tmp_path, spread(kind, 1000))[0])["traffic_burst"]
    assert [(a.get("src_ip"), a["dest_ip"]) for a in fired] == [(None, "10.1.0.1")]
    assert fired[0]["evidence"]["distinct_sources"] >= 900 and "from" in fired[0]["message"]


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_busy_server_answering_many_clients_is_not_a_flood(tmp_path, kind):
    assert "traffic_burst" not in types(run_packets(tmp_path, spread(kind, 1500, reply=True))[0])


@pytest.mark.parametrize("kind", ["icmp", "udp", "tcp"])
def test_near_miss_of_a_many_sources_flood_names_the_victim(tmp_path, kind):
    """700 of 1000 flood packets from 700 sources: a near miss keyed by the victim (no `src_ip`),
    with the sources counted; answered traffic (a busy server) is none."""
    alerts, engine = run_packets(tmp_path, spread(kind, 700))
    assert "traffic_burst" not in types(alerts)
    near = [n for n in engine.near_misses() if n["detector"] == "traffic_burst"]
    assert len(near) == 1 and "src_ip" not in near[0], near
    n = near[0]
    sources = int(n["unit"].split(" from ")[1].split()[0])
    assert abs(sources - 700) <= 70  # HyperLogLog estimate
    assert (n["dest_ip"], n["figure"], n["threshold"], n["fraction"]) == ("10.1.0.1", 700, 1000, 0.7)
    assert n["text"] == f"to 10.1.0.1: 700 of 1000 {n['unit']} in 10 s"
    if kind != "icmp":
        _, engine = run_packets(tmp_path, spread(kind, 700, reply=True), name="served.pcap")
        assert not [n for n in engine.near_misses() if n["detector"] == "traffic_burst"]


def test_a_tcp_flood_keeps_its_count_while_busier_icmp_victims_fill_the_table(tmp_path):
    """A flood of ACKs from 600 sources, then 40 other hosts each get 60 ICMP requests in one second
    (each busy enough to be tracked; max_targets 16 holds fewer), then 500 more ACKs from new
    sources: the victim's entry, the nearest to the threshold, is kept and the alert counts all
    1,100. Before, a destination was ranked by its ICMP requests alone: the TCP victim ranked 0
    and was evicted first, and its count restarted at 500 (no alert)."""
    e = Ether(dst="02:00:00:00:00:02")
    acks = [(T0 + i * 0.001 + (1.4 if i >= 600 else 0), e / IP(src=many(4, i), dst="10.1.0.1") /
             TCP(sport=1024 + i, dport=80, flags="A")) for i in range(1100)]
    pings = [(T0 + 1 + (k * 40 + h) * 0.0004, e / IP(src=many(4, 2000 + k), dst=f"10.1.1.{h + 1}") / ICMP(type=8, seq=k))
             for k in range(60) for h in range(40)]
    alerts, engine = run_packets(tmp_path, sorted(acks + pings, key=lambda p: p[0]), {"detect.traffic_burst.max_targets": 16})
    fired = [a for a in types(alerts).get("traffic_burst", []) if a["dest_ip"] == "10.1.0.1"]
    assert [(a["proto"], a["evidence"]["packets"]) for a in fired] == [("TCP", 1100)]
    assert engine.summary()["detector_state"]["traffic_burst_victims_evicted"] > 0  # the table was full
