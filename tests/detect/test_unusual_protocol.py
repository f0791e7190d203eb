"""unusual_protocol: IP protocols off the allowed list and impossible TCP flag combinations."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, many, types
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw


@pytest.mark.parametrize("v", [4, 6])
def test_unusual_protocol_threshold(tmp_path, v):
    def gre(n):
        return [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / (IP(src=ADDRS[v][0], dst=host(v, 0), proto=47) if v == 4 else
                                           IPv6(src=ADDRS[v][0], dst=host(v, 0), nh=47)) / Raw(b"\x00" * 8)) for i in range(n)]
    assert "unusual_protocol" not in types(run_packets(tmp_path, gre(2))[0])
    fired = types(run_packets(tmp_path, gre(3))[0])["unusual_protocol"]
    assert fired[0]["evidence"]["protocol"] == 47 and fired[0]["evidence"]["packets"] == 3


@pytest.mark.parametrize("flags,name", [("FPU", "Xmas"), ("", "NULL"), ("SF", "SYN+FIN"), ("SR", "SYN+RST"), ("F", "FIN without ACK")])
def test_unusual_tcp_flags(tmp_path, flags, name):
    pkts = [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / TCP(sport=1, dport=80 + i, flags=flags)) for i in range(3)]
    fired = types(run_packets(tmp_path, pkts)[0])["unusual_protocol"]
    assert fired[0]["evidence"]["tcp_flags"].startswith(name)


def test_normal_tcp_flags_are_not_unusual(tmp_path):
    pkts = [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.2", dst="10.1.0.1") / TCP(sport=1, dport=80, flags=f))
            for i, f in enumerate(["S", "SA", "A", "PA", "FA", "R", "RA", "A"] * 3)]
    assert "unusual_protocol" not in types(run_packets(tmp_path, pkts)[0])


def test_unusual_protocol_state_bounded_under_source_flood(tmp_path):
    cap = 32
    def gre(src, t):
        return (t, Ether(dst="02:00:00:00:00:02") / IP(src=src, dst="10.1.0.1", proto=47) / Raw(b"\x00" * 8))
    noise = [gre(many(4, i), T0 + i * 0.0005) for i in range(10 * cap)]  # one packet each: below the threshold
    real = [gre("10.1.0.66", T0 + 0.05 + i * 0.01) for i in range(3)]
    alerts, engine = run_packets(tmp_path, sorted(noise + real, key=lambda p: p[0]),
                                 {"detect.unusual_protocol.max_sources": cap})
    assert [a["src_ip"] for a in alerts if a["type"] == "unusual_protocol"] == ["10.1.0.66"]
    st = engine.summary()["detector_state"]
    assert st["unusual_protocol_keys"] <= cap and st["unusual_protocol_evicted"] > 0


def _announce(src, dst, proto, n=6):
    """n packets of IP protocol `proto` from src to dst, one every 10 ms (hellos, compressed in time)."""
    ip = (lambda: IP(src=src, dst=dst, proto=proto, ttl=1)) if ":" not in src else (lambda: IPv6(src=src, dst=dst, nh=proto, hlim=1))
    return [(T0 + i * 0.01, Ether(dst="01:00:5e:00:00:05") / ip() / Raw(b"\x00" * 24)) for i in range(n)]


@pytest.mark.parametrize("src,group,proto", [("10.1.0.254", "224.0.0.5", 89), ("10.1.0.253", "224.0.0.13", 103),
                                             ("10.1.0.252", "224.0.0.18", 112), ("10.1.0.251", "224.0.0.10", 88),
                                             ("fe80::1", "ff02::5", 89), ("fe80::2", "ff02::12", 112),
                                             ("fe80::1", "fe80::3", 89)])
def test_routing_announcements_to_link_local_groups_are_normal(tmp_path, src, group, proto):
    """OSPF, PIM, VRRP and EIGRP to their link-local groups, and OSPFv3 between link-local neighbours,
    are a network's own control plane: silent."""
    assert "unusual_protocol" not in types(run_packets(tmp_path, _announce(src, group, proto))[0])


@pytest.mark.parametrize("dst,proto", [("10.1.0.1", 89), ("224.0.1.5", 89), ("239.1.1.1", 112), ("224.0.0.5", 253),
                                       ("ff05::5", 89), ("2001:db8::5", 89)])
def test_the_same_protocols_elsewhere_or_other_protocols_to_those_groups_still_alert(tmp_path, dst, proto):
    """The exemption is the pair: a listed protocol *and* a link-local group. OSPF to a unicast host or a
    routed group, or an experimental protocol to 224.0.0.5, is still unusual."""
    src = "2001:db8::9" if ":" in dst else "10.1.0.66"
    fired = types(run_packets(tmp_path, _announce(src, dst, proto))[0])["unusual_protocol"]
    assert fired[0]["evidence"]["protocol"] == proto


def test_link_local_protocols_setting_empties_the_exemption(tmp_path):
    alerts, _ = run_packets(tmp_path, _announce("10.1.0.254", "224.0.0.5", 89),
                            {"detect.unusual_protocol.link_local_protocols": []})
    assert types(alerts)["unusual_protocol"][0]["evidence"]["protocol_name"] == "OSPF"
