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
    # a flood tool's source port moves on per datagram (hping3 --udp); one socket's stream: test_traffic_burst_stream.py
    one_way = [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / UDP(sport=5000 + i, dport=9000)) for i in range(1000)]
    assert types(run_packets(tmp_path, one_way)[0])["traffic_burst"][0]["proto"] == "UDP"
    answered = []
    for i in range(1000):
        answered += [one_way[i], (one_way[i][0] + 0.0001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.66") / UDP(sport=9000, dport=5000 + i))]
    assert "traffic_burst" not in types(run_packets(tmp_path, answered)[0])


def _udp_stream(a, b, n=2000):
    """n datagrams of 1,400 bytes, one every 1 ms, from a to b's port 5201, each from a source port of
    its own (iperf3 -u sends from one socket, which alone is a stream already: test_traffic_burst_stream.py;
    here the TCP connection is what tells it from a flood)."""
    return [(T0 + 0.01 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / UDP(sport=20000 + i, dport=5201)
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


def _data_flood(a, b, n, size=1200):
    """n TCP data segments with ACK set from a to b:23, nothing acknowledged back (hping3 -A -d
    1200 --flood; a data stream whose receiver never answers)."""
    return [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / TCP(sport=40000, dport=23, flags="PA", seq=i * size)
             / Raw(b"x" * size)) for i in range(n)]


def _wire_bytes(pkts) -> int:
    return sum(len(bytes(p)) for _, p in pkts)


def test_a_flood_reports_the_bytes_of_its_packets(tmp_path):
    """The evidence's bytes are the flood's packets' bytes. A data segment carries ACK and an
    echo reply answers, which made them "answers" whose bytes were left out: a TCP data flood
    and an echo reply flood reported bytes 0 (main)."""
    a, b = "10.1.0.66", "10.1.0.1"
    replies = [(T0 + i * 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src=a, dst=b) / ICMP(type=0, seq=1) / Raw(b"p" * 56))
               for i in range(1000)]
    for flood, proto in ((_data_flood(a, b, 1000), "TCP"), (_ack_flood(a, b, 1000, T0), "TCP"), (replies, "ICMP")):
        fired = types(run_packets(tmp_path, flood)[0])["traffic_burst"]
        ev = fired[0]["evidence"]
        assert (fired[0]["src_ip"], fired[0]["proto"], ev["packets"]) == (a, proto, 1000)
        assert ev["bytes"] == _wire_bytes(flood) and proto in ev["bytes_note"]


def test_bytes_threshold_makes_a_tcp_data_flood_a_burst(tmp_path):
    """bytes_threshold counts the bytes of the flood's packets, TCP data segments included: 500
    segments (half the packet threshold) of 1,254 bytes each are a burst over 600,000 bytes (main:
    none, their bytes counted 0), not over 700,000; acknowledged, the same bytes are a transfer."""
    a, b = "10.1.0.66", "10.1.0.1"
    flood = _data_flood(a, b, 500)
    total = _wire_bytes(flood)
    assert 600_000 < total < 700_000
    fired = types(run_packets(tmp_path, flood, {"detect.traffic_burst.bytes_threshold": 600_000})[0])["traffic_burst"]
    assert [(x["src_ip"], x["proto"], x["evidence"]["packets"], x["evidence"]["bytes"]) for x in fired] == \
        [(a, "TCP", 500, total)]
    assert "traffic_burst" not in types(run_packets(tmp_path, flood, {"detect.traffic_burst.bytes_threshold": 700_000})[0])
    acks = [(t + 0.0005, Ether(dst="02:00:00:00:00:02") / IP(src=b, dst=a) / TCP(sport=23, dport=40000, flags="A"))
            for t, _ in flood[::10]]
    transfer = sorted(flood + acks, key=lambda p: p[0])
    assert "traffic_burst" not in types(run_packets(tmp_path, transfer, {"detect.traffic_burst.bytes_threshold": 600_000})[0])


def test_bytes_threshold_is_a_burst_of_the_pairs_main_kind(tmp_path):
    """A pair's heavy answered UDP (a query/response exchange) and one ping are no ICMP flood: the
    bytes make a burst of the kind that sent most packets, which the answers then clear (main:
    an "ICMP request flood" of 1 packet, the UDP bytes counted towards it)."""
    a, b = "10.1.0.66", "10.1.0.1"
    e = Ether(dst="02:00:00:00:00:02")
    exchange = []
    for i in range(600):
        t = T0 + i * 0.001
        exchange += [(t, e / IP(src=a, dst=b) / UDP(sport=5000, dport=9000) / Raw(b"q" * 1000)),
                     (t + 0.0002, e / IP(src=b, dst=a) / UDP(sport=9000, dport=5000) / Raw(b"r" * 20))]
    ping = [(T0 + 0.3, e / IP(src=a, dst=b) / ICMP(type=8, seq=1))]
    overrides = {"detect.traffic_burst.bytes_threshold": 500_000}
    assert "traffic_burst" not in types(run_packets(tmp_path, sorted(exchange + ping, key=lambda p: p[0]), overrides)[0])
    unanswered = [p for p in exchange if p[1][IP].src == a]  # the same datagrams, nothing back: a UDP burst by bytes
    for i, p in enumerate(unanswered):  # from a source port each, as a flood tool sends (one socket: a stream)
        p[1][UDP].sport = 20000 + i
    fired = types(run_packets(tmp_path, sorted(unanswered + ping, key=lambda p: p[0]), overrides)[0])["traffic_burst"]
    assert [(x["proto"], x["evidence"]["packets"]) for x in fired] == [("UDP", 600)]
