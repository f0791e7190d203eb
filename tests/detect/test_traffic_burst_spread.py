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
