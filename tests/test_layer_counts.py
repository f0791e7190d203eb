"""stats.decoder's per-protocol counters (Suricata's names) from crafted packets."""

from __future__ import annotations

from conftest import run_packets
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP

from wirewatch.craft import eth
from wirewatch.schema import stats_record


def test_counts_per_ip_version_and_protocol(tmp_path):
    layers = ([IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80, flags="A")] * 5
              + [IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53)] * 4
              + [IP(src="10.0.0.1", dst="10.0.0.2") / ICMP()] * 3
              + [IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / GRE()] * 2
              + [IPv6(src="fd00::1", dst="fd00::2") / TCP(dport=443, flags="A")] * 2
              + [IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest()])
    pkts = [(1.0 + i / 100, eth(layer)) for i, layer in enumerate(layers)]
    pkts.append((2.0, eth(ARP(pdst="10.0.0.2"))))
    _, engine = run_packets(tmp_path, pkts, {"detect.unusual_protocol.enabled": False})
    dec = stats_record(engine, None, (0, 0, 0), 0, True)["stats"]["decoder"]
    assert {k: dec[k] for k in ("pkts", "ipv4", "ipv6", "tcp", "udp", "icmpv4", "icmpv6", "gre", "non_ip")} == \
        {"pkts": 18, "ipv4": 14, "ipv6": 3, "tcp": 7, "udp": 4, "icmpv4": 3, "icmpv6": 1, "gre": 2, "non_ip": 1}
    assert dec["avg_pkt_size"] == dec["bytes"] // dec["pkts"]
