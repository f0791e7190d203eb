"""traffic_burst: one-way floods from one source, told apart from answered traffic and transfers."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, ip, many, types
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest
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


def _udp_stream(a, b, n=2000):
    """iperf3 -u: n datagrams of 1,400 bytes, one every 1 ms, from a to b's port 5201."""
    return [(T0 + 0.01 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / UDP(sport=40001, dport=5201)
             / Raw(b"u" * 1400)) for i in range(n)]


def _control_connection(a, b):
    """A TCP connection from a to b:5201 carrying a little data each way, as iperf3's control connection does."""
    e, t = Ether(dst="02:00:00:00:00:02"), T0
    seg = [(a, b, "S", b""), (b, a, "SA", b""), (a, b, "A", b""), (a, b, "PA", b"{json params}"), (b, a, "A", b""),
           (b, a, "PA", b"\x09"), (a, b, "A", b"")]
    return [(t + k * 0.001, e / IP(src=s, dst=d) / TCP(sport=40000 if s == a else 5201, dport=5201 if s == a else 40000,
                                                        flags=f) / Raw(data)) for k, (s, d, f, data) in enumerate(seg)]


def test_udp_stream_set_up_over_a_tcp_connection_is_not_a_flood(tmp_path):
    """The same one-way UDP stream is a flood alone and a measurement when its two hosts hold a TCP
    connection (iperf3 -u, RTP after RTSP): the destination acknowledging the source's TCP."""
    a, b = "10.1.0.21", "10.1.0.1"
    fired = types(run_packets(tmp_path, _udp_stream(a, b))[0])["traffic_burst"]
    assert fired[0]["src_ip"] == a and fired[0]["proto"] == "UDP"
    both = sorted(_control_connection(a, b) + _udp_stream(a, b), key=lambda p: p[0])
    assert "traffic_burst" not in types(run_packets(tmp_path, both)[0])
    # a connection to another host, or SYNs the destination only refuses, set nothing up
    refused = [(T0 + k * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=src, dst=dst) / TCP(sport=40000, dport=80, flags=f))
               for k, (src, dst, f) in enumerate([(a, b, "S"), (b, a, "RA")] * 3)]
    elsewhere = _control_connection(a, "10.1.0.2")
    for extra in (refused, elsewhere):
        got = types(run_packets(tmp_path, sorted(extra + _udp_stream(a, b), key=lambda p: p[0]))[0])
        assert [x["dest_ip"] for x in got["traffic_burst"]] == [b]


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


def _ack_flood(a, b, n, t0):
    """n ACKs without a connection from a to b, one every 1 ms from t0 (a new source port each)."""
    return [(t0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / TCP(sport=3000 + i, dport=80, flags="A"))
            for i in range(n)]


@pytest.mark.parametrize("noise", ["icmp", "udp"])
def test_a_tcp_flood_keeps_its_count_while_many_sources_fill_the_pairs_table(tmp_path, noise):
    """An ACK flood of 600 packets, then 200 sources of a few packets each fill the pairs table
    (max_pairs 64) with pairs far below the threshold, then 500 more ACKs: the flood's pair is
    kept and the alert counts all 1,100 within the window. Eviction ranks a pair by how far it is
    towards a threshold (its largest kind over the packet threshold, bytes over bytes_threshold);
    before, by its ICMP requests alone, so a TCP or UDP flood ranked 0, below every ICMP
    request, and was the first to go (its count restarted at 500: no alert)."""
    a, b = "10.1.0.66", "10.1.0.1"
    layer = {"icmp": lambda i: ICMP(type=8, seq=i), "udp": lambda i: UDP(sport=1024 + i, dport=53)}[noise]
    filler = [(T0 + 1 + (k * 200 + i) * 0.002, Ether(dst="02:00:00:00:00:02") / IP(src=many(4, i), dst="10.1.0.2") / layer(k))
              for k in range(2) for i in range(200)]
    pkts = _ack_flood(a, b, 600, T0) + sorted(filler, key=lambda p: p[0]) + _ack_flood(a, b, 500, T0 + 2)
    alerts, engine = run_packets(tmp_path, pkts, {"detect.traffic_burst.max_pairs": 64})
    fired = [x for x in types(alerts).get("traffic_burst", []) if x.get("src_ip") == a]
    assert [(x["dest_ip"], x["proto"], x["evidence"]["packets"]) for x in fired] == [(b, "TCP", 1100)]
    assert engine.summary()["detector_state"]["traffic_burst_evicted"] > 0  # the table was full


@pytest.mark.parametrize("v", [4, 6])
def test_icmp_replies_that_answer_no_request_are_a_flood(tmp_path, v):
    """hping3 --icmp -C 0 (recorded: 15,000 echo replies to a host that sent no request, silent
    before): echo replies with no requests behind them are a flood of their sender, from the
    threshold on; the replies of a pinged host answer the ping flood's requests and accuse nobody."""
    a, b = ADDRS[v][0], host(v, 0)

    def replies(n):
        rep = ICMP(type=0, seq=1) if v == 4 else ICMPv6EchoReply(seq=1)
        return [(T0 + i * 0.0005, Ether(dst="02:00:00:00:00:02") / ip(v, a, b) / rep) for i in range(n)]
    assert "traffic_burst" not in types(run_packets(tmp_path, replies(999))[0])
    fired = types(run_packets(tmp_path, replies(1000))[0])["traffic_burst"]
    assert [(x["src_ip"], x["dest_ip"], x["evidence"]["kind"]) for x in fired] == [(a, b, "ICMP reply flood (answering no request)")]
    assert fired[0]["evidence"]["replies"] == 0  # the requests b sent
    pinged = []
    for i in range(1500):  # b floods a with echo requests, a answers every one
        req, rep = (ICMP(type=8, seq=i), ICMP(type=0, seq=i)) if v == 4 else (ICMPv6EchoRequest(seq=i), ICMPv6EchoReply(seq=i))
        pinged += [(T0 + i * 0.0005, Ether(dst="02:00:00:00:00:02") / ip(v, b, a) / req),
                   (T0 + i * 0.0005 + 0.0001, Ether(dst="02:00:00:00:00:02") / ip(v, a, b) / rep)]
    assert [x["src_ip"] for x in types(run_packets(tmp_path, pinged)[0])["traffic_burst"]] == [b]
