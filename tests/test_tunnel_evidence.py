"""TunnelEvidence: which tunnel an alert's hosts were seen in, bounded by address."""

from __future__ import annotations

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Ether
from scapy.layers.vxlan import VXLAN
from test_decode_tunnels import frames_meta

from wirewatch.decode import decode
from wirewatch.detect.base import Finding
from wirewatch.tunnel_evidence import TunnelEvidence

OUTER = Ether(dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")


def vxlan(src: str, dst: str = "192.168.0.10") -> bytes:
    return bytes(OUTER / UDP(sport=5000, dport=4789) / VXLAN() / Ether() / IP(src=src, dst=dst) / TCP(dport=80))


def finding(src: str | None, dst: str | None = None) -> Finding:
    return Finding(type="port_scan", identifier=(src,), ts=0.0, message="", src_ip=src, dest_ip=dst)


def test_a_source_seen_inside_a_tunnel_is_named_and_others_are_not():
    memory = TunnelEvidence(65_536)
    nested = bytes(Ether() / MPLS(s=1) / IP(src="10.0.0.1", dst="10.0.0.2") / GRE()
                   / IP(src="172.16.0.9", dst="192.168.0.11") / TCP(dport=22))
    plain = bytes(Ether() / IP(src="192.168.0.77", dst="192.168.0.10") / TCP(dport=22))
    memory.observe(decode(*frames_meta([vxlan("192.168.0.66"), nested, plain]), 1))
    found = memory.annotate([finding("192.168.0.66"), finding("172.16.0.9"), finding("192.168.0.77"),
                             finding(None, "192.168.0.10"), finding("192.168.0.77", "192.168.0.10")])
    assert [f.evidence.get("tunnel") for f in found] == ["vxlan", ["mpls", "gre"], None, "vxlan", None]
    assert memory.stats() == {"tunnel_packets_mpls/gre": 1, "tunnel_packets_vxlan": 1,
                              "tunnel_addresses": 4, "tunnel_addresses_evicted": 0}


def test_memory_is_bounded_and_evictions_counted():
    memory = TunnelEvidence(cap=16)
    frames = [vxlan(f"192.168.{i // 250}.{i % 250 + 1}", "192.168.200.1") for i in range(200)]
    memory.observe(decode(*frames_meta(frames), 1))
    stats = memory.stats()
    assert stats["tunnel_addresses"] == 16 and stats["tunnel_addresses_evicted"] == 201 - 16
    assert stats["tunnel_packets_vxlan"] == 200


def test_no_tunnel_no_state():
    memory = TunnelEvidence(65_536)
    memory.observe(decode(*frames_meta([bytes(Ether() / IP() / TCP())]), 1))
    assert memory.stats() == {} and memory.annotate([finding("127.0.0.1")])[0].evidence == {}


def gre(src: str, dst: str = "192.168.0.10") -> bytes:
    return bytes(OUTER / GRE() / IP(src=src, dst=dst) / TCP(dport=22))


def test_the_latest_tunnel_of_an_address_wins_within_a_batch_and_across_batches():
    memory = TunnelEvidence(65_536)
    memory.observe(decode(*frames_meta([vxlan("192.168.0.66"), gre("192.168.0.66")]), 1))
    assert memory.annotate([finding("192.168.0.66")])[0].evidence["tunnel"] == "gre"
    memory.observe(decode(*frames_meta([vxlan("192.168.0.66")]), 1))
    assert memory.annotate([finding("192.168.0.66")])[0].evidence["tunnel"] == "vxlan"
    v6 = bytes(OUTER / UDP(sport=5000, dport=4789) / VXLAN() / Ether() / IPv6(src="2001:db8::66", dst="2001:db8::1")
               / TCP(dport=80))
    memory.observe(decode(*frames_meta([v6]), 1))
    assert memory.annotate([finding("2001:db8::66")])[0].evidence["tunnel"] == "vxlan"


def test_the_least_recently_seen_go_first_and_a_smaller_cap_evicts_at_once():
    memory = TunnelEvidence(16)
    memory.observe(decode(*frames_meta([vxlan(f"192.168.1.{i}", "192.168.200.1") for i in range(1, 11)]), 1))
    memory.observe(decode(*frames_meta([vxlan("192.168.1.1", "192.168.200.1")]), 1))  # .1 seen again
    memory.observe(decode(*frames_meta([vxlan(f"192.168.2.{i}", "192.168.200.1") for i in range(1, 6)]), 1))
    assert memory.stats()["tunnel_addresses_evicted"] == 0  # 10 + 5 sources and 1 destination
    memory.reconfigure(7)  # the oldest 9 go: .2-.10
    kept = [f.evidence.get("tunnel") for f in memory.annotate([finding(f"192.168.1.{i}") for i in range(1, 11)])]
    assert kept == ["vxlan"] + [None] * 9  # .1 was refreshed; .2-.10 were the oldest
    assert memory.stats()["tunnel_addresses"] == 7 and memory.stats()["tunnel_addresses_evicted"] == 9


def test_the_cap_is_a_config_key(tmp_path):
    from wirewatch import config
    from wirewatch.engine import Engine

    engine = Engine(config.build([("decode", "tunnel_addresses", 16, "--set")]))
    assert engine.tunnels.cap == 16
    with pytest.raises(config.ConfigError, match="tunnel_addresses"):
        config.build([("decode", "tunnel_addresses", 3, "--set")])
