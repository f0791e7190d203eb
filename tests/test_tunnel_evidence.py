"""TunnelEvidence: which tunnel an alert's hosts were seen in, bounded by address."""

from __future__ import annotations

from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
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
    memory = TunnelEvidence()
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
    memory = TunnelEvidence()
    memory.observe(decode(*frames_meta([bytes(Ether() / IP() / TCP())]), 1))
    assert memory.stats() == {} and memory.annotate([finding("127.0.0.1")])[0].evidence == {}
