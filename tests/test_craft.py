"""craft.py: Scapy-crafted scenarios with explicit packet times, and the numpy SYN storm."""

from __future__ import annotations

import struct

from conftest import decode_file
from scapy.layers.inet import IP, TCP, UDP
from scapy.utils import rdpcap

from wirewatch.craft import (
    BASE_TS,
    MAC_A,
    MAC_B,
    dns_query,
    eth,
    ping,
    syn_scan,
    tcp_handshake,
    write_pcap,
    write_syn_storm,
)


def test_write_pcap_keeps_each_packets_time_and_the_link_type(tmp_path):
    pkts = [(BASE_TS + 0.123456, eth(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53))),
            (BASE_TS + 7.5, eth(IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=53)))]
    path = write_pcap(str(tmp_path / "a.pcap"), pkts)
    assert path == str(tmp_path / "a.pcap")
    back = rdpcap(path)
    assert [float(p.time) for p in back] == [BASE_TS + 0.123456, BASE_TS + 7.5]
    assert back[0].src == MAC_A and back[0].dst == MAC_B
    magic, _, _, _, _, snaplen, linktype = struct.unpack("<IHHiIII", open(path, "rb").read(24))
    assert (magic, snaplen, linktype) == (0xA1B2C3D4, 65535, 1)
    nano = write_pcap(str(tmp_path / "n.pcap"), pkts, nano=True, snaplen=96)
    magic, _, _, _, _, snaplen, _ = struct.unpack("<IHHiIII", open(nano, "rb").read(24))
    assert (magic, snaplen) == (0xA1B23C4D, 96)


def flags(pkts) -> list[str]:
    return [str(p[TCP].flags) for _, p in pkts]


def test_a_handshake_is_a_whole_connection_in_time_order():
    plain = tcp_handshake(BASE_TS, "10.0.0.1", "10.0.0.2", 40000, 80)
    assert flags(plain) == ["S", "SA", "A", "FA", "FA"]
    talk = tcp_handshake(BASE_TS, "10.0.0.1", "10.0.0.2", 40000, 80, payload=b"GET / HTTP/1.0\r\n\r\n")
    assert flags(talk) == ["S", "SA", "A", "PA", "PA", "FA", "FA"]
    assert bytes(talk[3][1][TCP].payload) == b"GET / HTTP/1.0\r\n\r\n"
    assert [t for t, _ in talk] == sorted(t for t, _ in talk) and talk[0][0] == BASE_TS


def test_a_syn_scan_answers_open_ports_with_syn_ack_and_the_rest_with_rst():
    pkts = syn_scan(BASE_TS, "10.0.0.9", "10.0.0.2", [22, 23, 80], gap=0.1, open_ports=[80])
    assert flags(pkts) == ["S", "RA", "S", "RA", "S", "SA"]
    assert [p[IP].src for _, p in pkts[::2]] == ["10.0.0.9"] * 3 and pkts[4][0] == BASE_TS + 0.2


def test_dns_and_ping_exchanges():
    q, a = dns_query(BASE_TS, "10.0.0.1", "10.0.0.53", 5555)
    assert (q[1][UDP].dport, a[1][UDP].sport, a[1][UDP].dport) == (53, 53, 5555) and a[0] > q[0]
    req, rep = ping(BASE_TS, "10.0.0.1", "10.0.0.2", 7)
    assert (req[1]["ICMP"].type, rep[1]["ICMP"].type, rep[1]["ICMP"].seq) == (8, 0, 7)


def test_syn_storm_is_n_syns_from_n_distinct_sources_over_the_duration(tmp_path):
    path = write_syn_storm(str(tmp_path / "s.pcap"), 2000, "10.0.0.2", 80, duration=4.0)
    b = decode_file(path)
    assert len(b) == 2000 and set(b.dport.tolist()) == {80}
    back = rdpcap(path, count=3)
    assert all(p[TCP].flags == "S" and p[IP].dst == "10.0.0.2" for p in back)
    srcs = {str(p[IP].src) for p in rdpcap(path)}
    assert len(srcs) == 2000 and all(11 <= int(s.split(".")[0]) <= 126 for s in srcs)
    times = [float(p.time) for p in rdpcap(path)]
    assert times[0] == BASE_TS and times == sorted(times) and 3.99 < times[-1] - times[0] < 4.0
