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
