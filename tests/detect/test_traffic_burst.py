"""traffic_burst: one-way floods from one source, told apart from answered traffic and transfers."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, ip, many, types
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest
from scapy.layers.l2 import Ether
from scapy.packet import Raw


def icmp_flood(v, n, replies=True):
    pkts = []
    for i in range(n):
        t = T0 + i * 0.0005
        req = ICMP(type=8, seq=i) if v == 4 else ICMPv6EchoRequest(seq=i)
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / ip(v, ADDRS[v][0], host(v, 0)) / req))
        if replies:
            rep = ICMP(type=0, seq=i) if v == 4 else ICMPv6EchoRequest(seq=i)
            if v == 4:
                pkts.append((t + 0.0001, Ether(dst="02:00:00:00:00:02") / ip(v, host(v, 0), ADDRS[v][0]) / rep))
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_traffic_burst_icmp_threshold(tmp_path, v):
    assert "traffic_burst" not in types(run_packets(tmp_path, icmp_flood(v, 999))[0])
    fired = types(run_packets(tmp_path, icmp_flood(v, 1000))[0])["traffic_burst"]
    assert [a["src_ip"] for a in fired] == [ADDRS[v][0]] and fired[0]["evidence"]["packets"] == 1000


def test_traffic_burst_udp_one_way_vs_answered(tmp_path):
    one_way = [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / UDP(sport=5000, dport=9000)) for i in range(1000)]
    assert types(run_packets(tmp_path, one_way)[0])["traffic_burst"][0]["proto"] == "UDP"
    answered = []
    for i in range(1000):
        answered += [one_way[i], (one_way[i][0] + 0.0001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.66") / UDP(sport=9000, dport=5000))]
    assert "traffic_burst" not in types(run_packets(tmp_path, answered)[0])


def test_traffic_burst_ack_flood_vs_bulk_transfer(tmp_path):
    a, b = "10.1.0.66", "10.1.0.1"
    ack_flood = []
    for i in range(1000):
        t = T0 + i * 0.001
        ack_flood += [(t, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / TCP(sport=3000 + i, dport=80, flags="A")),
                      (t + 0.0001, Ether(dst="02:00:00:00:00:02") / IP(src=b, dst=a) / TCP(sport=80, dport=3000 + i, flags="R"))]
    fired = types(run_packets(tmp_path, ack_flood)[0])["traffic_burst"]
    assert fired[0]["src_ip"] == a and fired[0]["evidence"]["replies"] == 0
    bulk = [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / TCP(sport=3000, dport=80, flags="A") / Raw(b"x" * 1400)) for i in range(2000)]
    bulk += [(T0 + i * 0.02, Ether(dst="02:00:00:00:00:02") / IP(src=b, dst=a) / TCP(sport=80, dport=3000, flags="A")) for i in range(100)]
    assert "traffic_burst" not in types(run_packets(tmp_path, sorted(bulk, key=lambda p: p[0]))[0])


def test_traffic_burst_bounded(tmp_path):
    cap = 32
    noise = [(T0 + i * 0.0001, Ether(dst="02:00:00:00:00:02") / IP(src=many(4, i), dst="10.1.0.1") / UDP(sport=1, dport=2)) for i in range(10 * cap)]
    alerts, engine = run_packets(tmp_path, noise + icmp_flood(4, 1000, replies=False), {"detect.traffic_burst.max_pairs": cap})
    assert [a["src_ip"] for a in alerts if a["type"] == "traffic_burst"] == ["10.1.0.66"]
    st = engine.summary()["detector_state"]
    assert st["traffic_burst_keys"] <= cap and st["traffic_burst_evicted"] > 0
