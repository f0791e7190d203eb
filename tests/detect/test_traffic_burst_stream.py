"""traffic_burst: one socket's stream of fixed-size datagrams of data to a listener (video, TS
over UDP, no TCP control connection, no answer) is not a flood; the same datagrams with a source
port that moves on per datagram (hping3 --udp) are, and so are a one-socket stream the destination
refuses and a one-socket flood of small datagrams to the same listening port.

tests/benign/udp-video.pcap: 3 s of 1328-byte RTP/TS-style datagrams at 500/s from
172.31.60.61:40000 to a listening 172.31.60.62:5004, recorded in the held-out benign lab
(tests/benign/README.md); snaplen 128. tests/benign/one-socket-flood.pcap: 0.4 s of the mixed
capture where 172.31.60.201 floods that listening port from one socket (port 55555, 160-byte
datagrams, ~4000/s) while the video runs."""

from __future__ import annotations

from pathlib import Path

from conftest import run_file, run_packets
from crafted import T0, types
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import rdpcap

from wirewatch.craft import write_pcap

VIDEO = Path(__file__).resolve().parent.parent / "benign" / "udp-video.pcap"
FLOOD = Path(__file__).resolve().parent.parent / "benign" / "one-socket-flood.pcap"


def floods(alerts: list[dict]) -> list[dict]:
    return types(alerts).get("traffic_burst", [])


def test_a_fixed_size_stream_to_a_listener_is_not_a_flood():
    alerts, _ = run_file(str(VIDEO))
    assert alerts == []  # before: traffic_burst UDP flood 172.31.60.61 -> 172.31.60.62 (1212 packets)


def test_a_one_socket_stream_at_bytes_threshold_is_a_flood():
    """A flood from one socket to a listening port is a stream by its ports; its volume tells:
    at bytes_threshold bytes in the window it is a flood all the same (the video's 3 s carry
    1.6 MB of datagrams; 1 MB here stands for the default 50 MB in 10 s, 40 Mbit/s)."""
    found = floods(run_file(str(VIDEO), {"detect.traffic_burst.bytes_threshold": 1_000_000})[0])
    assert [(a["src_ip"], a["dest_ip"], a["evidence"]["kind"]) for a in found][:1] == \
        [("172.31.60.61", "172.31.60.62", "UDP flood")]
    assert found[0]["evidence"]["bytes"] >= 1_000_000


def test_the_same_datagrams_from_a_new_port_each_are_a_flood(tmp_path):
    out = []
    for i, p in enumerate(rdpcap(str(VIDEO))):
        if p.haslayer(UDP):  # hping3 --udp: the source port moves on with every datagram
            p[UDP].sport = 1024 + i % 60000
            del p[UDP].chksum
        out.append((float(p.time), p))
    found = floods(run_file(write_pcap(str(tmp_path / "moving.pcap"), out))[0])
    assert [(a["src_ip"], a["dest_ip"]) for a in found][:1] == [("172.31.60.61", "172.31.60.62")]
    assert found[0]["evidence"]["kind"] == "UDP flood"


def test_a_one_socket_stream_that_is_refused_is_a_flood(tmp_path):
    src, dst = "10.9.0.66", "10.9.0.20"
    pkts = []
    for i in range(1500):
        t = T0 + i * 0.002
        d = IP(src=src, dst=dst) / UDP(sport=40000, dport=5004) / Raw(bytes(160))
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / d))
        if i % 100 == 0:  # no listener: a rate-limited port unreachable now and then
            pkts.append((t + 0.0001, Ether(dst="02:00:00:00:00:02") / IP(src=dst, dst=src) / ICMP(type=3, code=3) / d))
    found = floods(run_packets(tmp_path, pkts)[0])
    assert [(a["src_ip"], a["dest_ip"]) for a in found][:1] == [(src, dst)]


def test_a_one_socket_flood_of_small_datagrams_to_the_listener_is_a_flood():
    found = floods(run_file(str(FLOOD))[0])
    assert [(a["src_ip"], a["dest_ip"], a["evidence"]["kind"]) for a in found] == \
        [("172.31.60.201", "172.31.60.62", "UDP flood")]  # the video sender 172.31.60.61 is not accused
