"""Tunnels: the inner packet is decoded and analysed, the outer layers named in `tunnel`.

Each tunnel is crafted with Scapy around the same inner packet; the decoded columns must
hold the inner addresses and ports, the compiled decoder must equal the numpy reference,
and a port scan inside the tunnel must be reported with the inner attacker and `tunnel`.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import decode_file, run_file
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from test_decode import assert_same_as_reference

from wirewatch import config
from wirewatch.addr import addr_str
from wirewatch.capture.pcapfile import read_batches
from wirewatch.craft import BASE_TS, write_pcap
from wirewatch.decode import decode, tunnel_names
from wirewatch.engine import Engine

ATTACKER, TARGET = "192.168.7.66", "192.168.7.10"
ATTACKER6, TARGET6 = "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::10"
OUTER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
TRANSPORT = IP(src="10.0.0.1", dst="10.0.0.2")
MAC = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")


def inner(port: int = 80, v6: bool = False):
    ip = IPv6(src=ATTACKER6, dst=TARGET6) if v6 else IP(src=ATTACKER, dst=TARGET)
    return ip / TCP(sport=40000, dport=port, flags="S")


# name -> (wrap the inner packet in this tunnel, expected tunnel names, inner is IPv6)
TUNNELS = {
    "gre": (lambda p: OUTER / TRANSPORT / GRE() / p, ["gre"], False),
    "gre_key_seq_checksum": (lambda p: OUTER / TRANSPORT / GRE(chksum_present=1, key_present=1, key=7,
                                                                seqnum_present=1, sequence_number=9) / p,
                             ["gre"], False),
    "gre_ipv6_over_ipv6": (lambda p: OUTER / IPv6(src="fd00::1", dst="fd00::2") / GRE() / p, ["gre"], True),
    "gre_transparent_ethernet": (lambda p: OUTER / TRANSPORT / GRE(proto=0x6558) / MAC / p, ["gre"], False),
    "erspan_type_1": (lambda p: OUTER / TRANSPORT / GRE(proto=0x88BE) / MAC / p, ["erspan"], False),
    "erspan_type_2": (lambda p: OUTER / TRANSPORT / GRE(seqnum_present=1) / ERSPAN_II(session_id=3) / MAC / p,
                      ["erspan"], False),
    "erspan_type_3": (lambda p: OUTER / TRANSPORT / GRE(seqnum_present=1) / ERSPAN_III(session_id=3) / MAC / p,
                      ["erspan"], False),
    "erspan_type_3_platform": (lambda p: OUTER / TRANSPORT / GRE() / ERSPAN_III(o=1) / ERSPAN_PlatformSpecific()
                               / MAC / p, ["erspan"], False),
    "vxlan": (lambda p: OUTER / TRANSPORT / UDP(sport=51000, dport=4789) / VXLAN(vni=42) / MAC / p, ["vxlan"], False),
    "vxlan_inner_vlan": (lambda p: OUTER / TRANSPORT / UDP(sport=51000, dport=4789) / VXLAN(vni=42) / MAC
                         / Dot1Q(vlan=9) / p, ["vxlan"], False),
    "geneve": (lambda p: OUTER / TRANSPORT / UDP(sport=51000, dport=6081) / GENEVE(vni=5, proto=0x6558) / MAC / p,
               ["geneve"], False),
    "geneve_options_ip": (lambda p: OUTER / TRANSPORT / UDP(sport=51000, dport=6081)
                          / GENEVE(vni=5, proto=0x0800, optionlen=2) / Raw(b"\x01\x02\x03\x01" + b"\x00" * 4) / p,
                          ["geneve"], False),
    "ipv4_in_ipv4": (lambda p: OUTER / IP(src="10.0.0.1", dst="10.0.0.2", proto=4) / p, ["ip-in-ip"], False),
    "ipv4_in_ipv6": (lambda p: OUTER / IPv6(src="fd00::1", dst="fd00::2", nh=4) / p, ["ip-in-ip"], False),
    "ipv6_in_ipv4": (lambda p: OUTER / IP(src="10.0.0.1", dst="10.0.0.2", proto=41) / p, ["ipv6-in-ip"], True),
    "ipv6_in_ipv6": (lambda p: OUTER / IPv6(src="fd00::1", dst="fd00::2", nh=41) / p, ["ipv6-in-ip"], True),
    "teredo": (lambda p: OUTER / TRANSPORT / UDP(sport=3544, dport=51000) / p, ["teredo"], True),
    "teredo_origin_indication": (lambda p: OUTER / TRANSPORT / UDP(sport=3544, dport=51000)
                                 / Raw(b"\x00\x00\xf2\x27\xbf\xff\xfe\x02") / p, ["teredo"], True),
    "gtp_u": (lambda p: OUTER / TRANSPORT / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=77) / p, ["gtp-u"], False),
    "gtp_u_extension": (lambda p: OUTER / TRANSPORT / UDP(sport=2152, dport=2152)
                        / GTP_U_Header(teid=77, E=1, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=5) / p,
                        ["gtp-u"], False),
    "mpls": (lambda p: OUTER / MPLS(label=100, s=0) / MPLS(label=200, s=1) / p, ["mpls"], False),
    "mpls_ipv6": (lambda p: OUTER / MPLS(label=100, s=1) / p, ["mpls"], True),
    "mpls_pseudowire_ethernet": (lambda p: OUTER / MPLS(label=16, s=1) / Raw(b"\x00" * 4) / MAC / p, ["mpls"], False),
    "pppoe": (lambda p: OUTER / PPPoE(sessionid=3) / PPP(proto=0x0021) / p, ["pppoe"], False),
    "pppoe_vlan_ipv6": (lambda p: OUTER / Dot1Q(vlan=5) / PPPoE(sessionid=3) / PPP(proto=0x0057) / p, ["pppoe"], True),
    "vxlan_in_gre": (lambda p: OUTER / TRANSPORT / GRE() / IP(src="20.0.0.1", dst="20.0.0.2")
                     / UDP(sport=51000, dport=4789) / VXLAN(vni=1) / MAC / p, ["gre", "vxlan"], False),
    "gre_over_mpls": (lambda p: OUTER / MPLS(label=100, s=1) / TRANSPORT / GRE() / p, ["mpls", "gre"], False),
    "mpls_over_gre": (lambda p: OUTER / TRANSPORT / GRE(proto=0x8847) / MPLS(label=30, s=1) / p,
                      ["gre", "mpls"], False),
}


def write(tmp_path, packets, name="t.pcap", **kw) -> str:
    return write_pcap(str(tmp_path / name), [(BASE_TS + i * 0.01, p) for i, p in enumerate(packets)], **kw)


def frames_meta(frames: list[bytes]) -> tuple[bytes, np.ndarray]:
    offs = np.cumsum([0] + [len(f) for f in frames[:-1]]) if frames else []
    meta = np.array([[1_700_000_000 + i, 0, o, len(f)] for i, (o, f) in enumerate(zip(offs, frames))], np.uint32)
    return b"".join(frames), meta.reshape(-1, 4)


@pytest.mark.parametrize("name", sorted(TUNNELS))
def test_inner_packet_is_decoded_and_tunnel_named(tmp_path, name):
    wrap, names, v6 = TUNNELS[name]
    b = decode_file(write(tmp_path, [wrap(inner(8080, v6))]))
    assert addr_str(b.src_hi[0], b.src_lo[0]) == (ATTACKER6 if v6 else ATTACKER)
    assert addr_str(b.dst_hi[0], b.dst_lo[0]) == (TARGET6 if v6 else TARGET)
    assert (b.ipver[0], b.proto[0], b.sport[0], b.dport[0], b.tcp_flags[0]) == (6 if v6 else 4, 6, 40000, 8080, 0x02)
    assert tunnel_names(int(b.tunnel[0])) == names
    assert not b.errors
    frame = bytes(wrap(inner(8080, v6)))
    assert b.length[0] == len(frame)  # the wire length is the outer frame's
    assert_same_as_reference(*frames_meta([frame]), 1)


@pytest.mark.parametrize("name", ["vxlan", "gre", "gre_transparent_ethernet", "teredo", "gtp_u", "mpls", "pppoe",
                                  "erspan_type_1", "erspan_type_2", "erspan_type_3", "geneve", "ipv4_in_ipv4",
                                  "ipv6_in_ipv4", "vxlan_in_gre"])
def test_port_scan_inside_a_tunnel_names_the_inner_attacker_and_the_tunnel(tmp_path, name):
    wrap, names, v6 = TUNNELS[name]
    alerts, engine = run_file(write(tmp_path, [wrap(inner(port, v6)) for port in range(1000, 1030)]))
    scans = [a for a in alerts if a["type"] == "port_scan"]
    assert len(scans) == 1
    assert scans[0]["src_ip"] == (ATTACKER6 if v6 else ATTACKER)
    assert scans[0]["dest_ip"] == (TARGET6 if v6 else TARGET)
    assert scans[0]["evidence"]["tunnel"] == (names[0] if len(names) == 1 else names)
    assert engine.summary()["detector_state"][f"tunnel_packets_{'/'.join(names)}"] == 30


def test_untunnelled_alerts_carry_no_tunnel_key(tmp_path):
    plain = [OUTER / inner(port) for port in range(1000, 1030)]
    alerts, engine = run_file(write(tmp_path, plain))
    assert [a["type"] for a in alerts] == ["port_scan"] and "tunnel" not in alerts[0]["evidence"]
    assert not any(k.startswith("tunnel") for k in engine.summary()["detector_state"])


def test_depth_limit_stops_at_the_configured_layer(tmp_path):
    wrap = TUNNELS["vxlan_in_gre"][0]
    path = write(tmp_path, [wrap(inner())])
    raw = next(read_batches(path))
    one = decode(raw.buf, raw.meta, raw.linktype, max_tunnel_depth=1)
    assert tunnel_names(int(one.tunnel[0])) == ["gre"]  # the middle packet: UDP to the VXLAN port
    assert addr_str(one.src_hi[0], one.src_lo[0]) == "20.0.0.1" and one.dport[0] == 4789
    none = decode(raw.buf, raw.meta, raw.linktype, max_tunnel_depth=0)
    assert none.tunnel[0] == 0 and none.proto[0] == 47 and addr_str(none.src_hi[0], none.src_lo[0]) == "10.0.0.1"
    for depth in (0, 1, 2):
        assert_same_as_reference(raw.buf, raw.meta, raw.linktype, depth)


def test_depth_setting_is_validated_and_reaches_the_engine(tmp_path):
    with pytest.raises(config.ConfigError, match="decode.max_tunnel_depth"):
        config.build([("decode", "max_tunnel_depth", "9", "test")])
    wrap = TUNNELS["vxlan"][0]
    alerts, _ = run_file(write(tmp_path, [wrap(inner(port)) for port in range(1000, 1030)]),
                         {"decode.max_tunnel_depth": "0"})
    assert not any(a["type"] == "port_scan" for a in alerts)  # only the VXLAN transport is seen


def test_malformed_inner_packets_are_counted_and_the_outer_packet_kept():
    vx = OUTER / TRANSPORT / UDP(sport=51000, dport=4789) / VXLAN(vni=42) / MAC
    bad_ihl = bytearray(bytes(vx / inner()))
    bad_ihl[len(vx)] = 0x41  # inner IPv4 header length 4 bytes
    cut = OUTER / TRANSPORT / UDP(sport=51000, dport=4789) / VXLAN(vni=42) / Ether(type=0x0800) \
        / Raw(bytes(inner())[:10])  # inner IPv4 header cut short, outer lengths consistent
    short_hdr = OUTER / TRANSPORT / UDP(sport=51000, dport=4789) / Raw(b"\x08\x00")  # VXLAN header cut
    gre_bad = bytearray(bytes(OUTER / TRANSPORT / GRE() / inner()))
    gre_bad[14 + 20 + 4] = 0x65  # inner "IPv4" with version 6
    frames = [bytes(bad_ihl), bytes(cut), bytes(short_hdr), bytes(gre_bad)]
    b = decode(*frames_meta(frames), 1)
    assert b.errors == {"malformed_inner_packet": 4}
    assert (b.tunnel == 0).all() and (b.ipver == 4).all()
    assert b.proto.tolist() == [17, 17, 17, 47] and b.dport[:3].tolist() == [4789] * 3
    assert addr_str(b.src_hi[0], b.src_lo[0]) == "10.0.0.1"
    assert_same_as_reference(*frames_meta(frames), 1)


def test_not_a_tunnel_stays_the_outer_packet_uncounted():
    frames = [
        bytes(OUTER / TRANSPORT / UDP(sport=4789, dport=53) / Raw(b"\x08" * 40)),  # VXLAN port as a source only
        bytes(OUTER / TRANSPORT / UDP(sport=51000, dport=4789) / Raw(b"\x00" * 40)),  # I flag clear
        bytes(OUTER / TRANSPORT / GRE(proto=0x880B) / Raw(b"x" * 30)),  # PPP in GRE: not decoded
        bytes(OUTER / IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / Raw(b"XXXX" * 10)),  # hping3 --rawip -H 47
        bytes(OUTER / TRANSPORT / UDP(sport=51000, dport=3544) / Raw(b"\x60" + b"\x00" * 50)),  # no Teredo IPv6
        bytes(OUTER / TRANSPORT / UDP(sport=51000, dport=4789) / VXLAN() / Ether(type=0x0806) / Raw(b"\x00" * 28)),
    ]
    b = decode(*frames_meta(frames), 1)
    assert not b.errors and (b.tunnel == 0).all()
    assert b.proto.tolist() == [17, 17, 47, 47, 17, 17]
    assert_same_as_reference(*frames_meta(frames), 1)


@pytest.mark.parametrize("v6", [False, True])
def test_ip_length_zero_takes_the_frame_length(v6):
    """Captured on the sending host with segmentation offload (or BIG TCP): tshark takes
    the length from the frame; so does the decoder, instead of a header error. Inside a
    tunnel too (the kernel's GSO captures of VXLAN carry such inner packets)."""
    ip = IPv6(src="fd00::1", dst="fd00::2") if v6 else IP(src="10.0.0.1", dst="10.0.0.2")
    pkt = ip / TCP(sport=5000, dport=443, flags="PA") / Raw(b"z" * 3000)
    raw = bytearray(bytes(OUTER / pkt))
    raw[18:20] = b"\x00\x00" if v6 else raw[18:20]
    raw[16:18] = raw[16:18] if v6 else b"\x00\x00"
    vx = bytes(OUTER / TRANSPORT / UDP(sport=51000, dport=4789) / VXLAN() / Ether(type=0x86DD if v6 else 0x0800)
               / Raw(bytes(raw[14:])))
    b = decode(*frames_meta([bytes(raw), vx]), 1)
    assert not b.errors and (b.ipver == (6 if v6 else 4)).all() and (b.dport == 443).all()
    assert b.length[0] == len(raw) and b.payload.tolist() == [3000, 3000]
    assert tunnel_names(int(b.tunnel[1])) == ["vxlan"]
    assert_same_as_reference(*frames_meta([bytes(raw), vx]), 1)


SAMPLES = [wrap(inner(80 + i, v6)) for i, (wrap, _, v6) in enumerate(TUNNELS.values())]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SAMPLES) - 1), st.integers(0, 160),
                          st.lists(st.tuples(st.integers(0, 159), st.integers(0, 255)), max_size=4)),
                min_size=1, max_size=12),
       st.integers(0, 8))
def test_compiled_decoder_matches_reference_on_damaged_tunnels(frames, depth):
    """Real tunnels, cut short at random points and with random bytes overwritten, at
    every depth limit: compiled and numpy decoders agree field for field."""
    datas = []
    for index, cut, flips in frames:
        data = bytearray(bytes(SAMPLES[index])[:cut])
        for pos, value in flips:
            if pos < len(data):
                data[pos] = value
        datas.append(bytes(data))
    assert_same_as_reference(*frames_meta(datas), 1, depth)


def test_reloaded_depth_takes_effect_on_the_next_batch(tmp_path):
    """SIGHUP: Engine.reconfigure with a new decode.max_tunnel_depth applies to the packets
    that follow (the decoder reads the setting per batch)."""
    wrap = TUNNELS["vxlan"][0]
    path = write(tmp_path, [wrap(inner(port)) for port in range(1000, 1030)])
    engine = Engine(config.build([("decode", "max_tunnel_depth", "0", "test")]), sinks=[])
    alerts = [a for raw in read_batches(path) for a in engine.feed(raw)] + engine.flush()
    assert not any(a["type"] == "port_scan" for a in alerts)
    engine.reconfigure(config.build([("decode", "max_tunnel_depth", "4", "test")]))
    later = write(tmp_path, [wrap(inner(port)) for port in range(2000, 2030)], name="later.pcap")
    alerts = [a for raw in read_batches(later) for a in engine.feed(raw)] + engine.flush()
    scans = [a for a in alerts if a["type"] == "port_scan"]
    assert [a["src_ip"] for a in scans] == [ATTACKER] and scans[0]["evidence"]["tunnel"] == "vxlan"
