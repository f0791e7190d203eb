"""Decoder on Scapy-crafted captures: every link type, VLAN, IPv6 extension, fragment, truncation."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from conftest import PURE_NUMPY, built, decode_file, native_paths
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR, fragment
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import (
    ARP,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Ether,
    Loopback,
)
from scapy.packet import Raw

from wirewatch.addr import addr_str
from wirewatch.craft import BASE_TS, write_pcap
from wirewatch.decode import FRAG_FIRST, FRAG_LATER, decode

TCP4 = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="S")
TCP6 = IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=1234, dport=80, flags="S")


def one(tmp_path, pkt, linktype=None, **kw):
    b = decode_file(write_pcap(str(tmp_path / "p.pcap"), [(BASE_TS + 1.25, pkt)], linktype=linktype, **kw))
    assert len(b) == 1
    return b


def assert_tcp4(b, sport=1234, dport=80):
    assert b.ipver[0] == 4 and b.proto[0] == 6
    assert addr_str(b.src_hi[0], b.src_lo[0]) == "10.0.0.1"
    assert addr_str(b.dst_hi[0], b.dst_lo[0]) == "10.0.0.2"
    assert (b.sport[0], b.dport[0], b.tcp_flags[0]) == (sport, dport, 0x02)
    assert b.has_ports[0] and b.flags_ok[0]


@pytest.mark.parametrize("wrap,linktype", [
    (lambda p: Ether(dst="02:00:00:00:00:02") / p, None),
    (lambda p: CookedLinux(proto=0x0800) / p, None),
    (lambda p: CookedLinuxV2(proto=0x0800) / p, None),
    (lambda p: p, 101),  # raw IP
    (lambda p: Loopback(type=2) / p, None),  # BSD loopback (DLT_NULL)
    (lambda p: Ether(dst="02:00:00:00:00:02") / Dot1Q(vlan=7) / p, None),
    (lambda p: Ether(dst="02:00:00:00:00:02") / Dot1AD(vlan=5) / Dot1Q(vlan=7) / p, None),  # QinQ
])
def test_link_types_ipv4(tmp_path, wrap, linktype):
    b = one(tmp_path, wrap(TCP4), linktype=linktype)
    assert_tcp4(b)
    assert not b.errors


def test_link_types_ipv6_on_sll2(tmp_path):
    b = one(tmp_path, CookedLinuxV2(proto=0x86DD) / TCP6)
    assert b.ipver[0] == 6 and addr_str(b.src_hi[0], b.src_lo[0]) == "fd00::1" and b.dport[0] == 80


def test_timestamps_are_record_times_micro_and_nano(tmp_path):
    times = [BASE_TS + 0.000001, BASE_TS + 12.5, BASE_TS + 99.999999]
    for nano in (False, True):
        path = write_pcap(str(tmp_path / f"t{nano}.pcap"), [(t, Ether(dst="02:00:00:00:00:02") / TCP4) for t in times], nano=nano)
        b = decode_file(path)
        assert np.allclose(b.ts, times, atol=1e-6, rtol=0)


def test_ipv4_options_and_wire_length_on_short_snaplen(tmp_path):
    pkt = Ether(dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR()]) / TCP(sport=1234, dport=80, flags="S") / Raw(b"x" * 1000)
    b = one(tmp_path, pkt, snaplen=96)
    assert_tcp4(b)
    assert b.length[0] == len(pkt)  # wire length from the IP header, not the 96 captured bytes
    assert b.payload[0] == 1000


@pytest.mark.parametrize("ext", [IPv6ExtHdrHopByHop(), IPv6ExtHdrRouting(), IPv6ExtHdrDestOpt(),
                                 IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting()])
def test_ipv6_extension_headers(tmp_path, ext):
    pkt = Ether(dst="02:00:00:00:00:02") / IPv6(src="fd00::1", dst="fd00::2") / ext / UDP(sport=5353, dport=53)
    b = one(tmp_path, pkt)
    assert b.ipver[0] == 6 and b.proto[0] == 17 and b.dport[0] == 53 and b.has_ports[0]


def test_ipv6_fragments(tmp_path):
    first = Ether(dst="02:00:00:00:00:02") / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(m=1, offset=0, id=7) / UDP(sport=1, dport=53)
    later = Ether(dst="02:00:00:00:00:02") / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(m=0, offset=10, id=7, nh=17) / Raw(b"y" * 40)
    b = decode_file(write_pcap(str(tmp_path / "f.pcap"), [(BASE_TS, first), (BASE_TS + 1, later)]))
    assert list(b.frag) == [FRAG_FIRST, FRAG_LATER]
    assert b.has_ports[0] and b.dport[0] == 53
    assert not b.has_ports[1] and b.proto[1] == 17  # later fragments: traffic, but no ports


def test_ipv4_fragments_ports_from_first_only(tmp_path):
    frags = fragment(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=53) / Raw(b"z" * 3000), fragsize=1000)
    b = decode_file(write_pcap(str(tmp_path / "f.pcap"), [(BASE_TS + i, Ether(dst="02:00:00:00:00:02") / f) for i, f in enumerate(frags)]))
    assert b.frag[0] == FRAG_FIRST and all(b.frag[1:] == FRAG_LATER)
    assert b.has_ports.tolist() == [True] + [False] * (len(frags) - 1)
    assert b.length.sum() > 3000


def test_tiny_tcp_fragment_has_ports_but_no_flags(tmp_path):
    frags = fragment(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=22, flags="S"), fragsize=8)
    b = decode_file(write_pcap(str(tmp_path / "f.pcap"), [(BASE_TS, Ether(dst="02:00:00:00:00:02") / f) for f in frags]))
    assert b.has_ports[0] and b.dport[0] == 22 and not b.flags_ok[0]


def test_icmp_and_icmpv6_and_quoted_packet(tmp_path):
    un = IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3, code=3) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=999, dport=161)
    un6 = IPv6(src="fd00::2", dst="fd00::1") / ICMPv6DestUnreach(code=4) / IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=5, dport=6)
    echo6 = IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest()
    b = decode_file(write_pcap(str(tmp_path / "i.pcap"), [(BASE_TS + i, Ether(dst="02:00:00:00:00:02") / p) for i, p in enumerate([un, un6, echo6])]))
    assert b.icmp_type.tolist() == [3, 1, 128] and b.has_icmp.all()
    assert b.has_inner.tolist() == [True, True, False]
    assert (b.inner_proto[0], b.inner_sport[0], b.inner_dport[0]) == (17, 999, 161)
    assert addr_str(b.inner_dst_hi[1], b.inner_dst_lo[1]) == "fd00::2" and b.inner_dport[1] == 6


def test_other_protocols_by_number_and_non_ip(tmp_path):
    gre = Ether(dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / Raw(b"\x00" * 20)
    arp = Ether(dst="02:00:00:00:00:02") / ARP()
    b = decode_file(write_pcap(str(tmp_path / "o.pcap"), [(BASE_TS, gre), (BASE_TS + 1, arp)]))
    assert b.proto[0] == 47 and b.ipver[0] == 4 and not b.has_ports[0]
    assert b.ipver[1] == 0 and b.non_ip == 1 and not b.errors


def test_truncated_and_bad_headers_are_counted(tmp_path):
    full = bytes(Ether(dst="02:00:00:00:00:02") / TCP4)
    frames = [full[:10], full[:20], full[:14] + b"\x45" + full[15:], full[:14] + b"\x41" + full[15:],
              full[:14] + b"\x75" + full[15:], full[:36]]
    buf = b"".join(frames)
    offs = np.cumsum([0] + [len(f) for f in frames[:-1]])
    meta = np.array([[int(BASE_TS), 0, o, len(f)] for o, f in zip(offs, frames)], np.uint32)
    b = decode(buf, meta, 1)
    assert b.errors == {"truncated_link_header": 1, "truncated_ip_header": 1, "bad_ip_header_length": 1,
                        "bad_ip_version": 1, "truncated_l4_header": 1}
    assert b.ipver.tolist() == [0, 0, 4, 0, 0, 4]


def test_unknown_linktype_counted():
    b = decode(b"\x00" * 40, np.array([[1, 0, 0, 40]], np.uint32), 147)
    assert b.errors == {"unknown_linktype_147": 1} and b.ipver[0] == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=20), st.sampled_from([0, 1, 101, 108, 113, 276, 12, 999]))
def test_decoder_never_raises_on_arbitrary_bytes(frames, linktype):
    buf = b"".join(frames)
    offs = np.cumsum([0] + [len(f) for f in frames[:-1]])
    meta = np.array([[1, 0, o, len(f)] for o, f in zip(offs, frames)], np.uint32)
    b = decode(buf, meta, linktype)
    assert len(b) == len(frames)
    assert ((b.ipver == 0) | (b.ipver == 4) | (b.ipver == 6)).all()


@settings(max_examples=200, deadline=None)
@given(st.booleans(), st.binary(min_size=0, max_size=120), st.integers(0, 2000))
def test_decoder_clamps_lying_caplen_offsets(real, tail, extra):
    """meta that points past the buffer is clamped to it: no crash, no byte read from beyond it
    (a row that starts at the buffer's end has nothing to decode), compiled = reference."""
    data = (bytes(Ether(dst="02:00:00:00:00:02") / TCP4) if real else b"") + tail  # a real packet, or noise
    meta = np.array([[1, 0, len(data), extra], [1, 0, 0, len(data) + extra]], np.uint32)
    b = decode(data, meta, 1)
    assert len(b) == 2
    assert b.ipver[0] == 0  # no bytes inside the buffer: not a packet
    if real:  # the packet inside the buffer is still decoded
        assert (b.ipver[1], b.proto[1], b.dport[1]) == (4, 6, 80)
    honest = decode(data, np.array([[1, 0, 0, len(data)]], np.uint32), 1)  # the row cut to what the buffer holds
    for name in ("ipver", "proto", "src_lo", "dst_lo", "sport", "dport", "tcp_flags"):
        assert getattr(b, name)[1] == getattr(honest, name)[0], name
    assert_same_as_reference(data, meta, 1)


# ---- the compiled decoder (native/decode.c) against the numpy reference ----------------
from wirewatch import decode as decode_mod  # noqa: E402
from wirewatch.decode import BATCH_FIELDS, decode_numpy  # noqa: E402


def assert_same_as_reference(buf: bytes, meta: np.ndarray, linktype: int, max_tunnel_depth: int = 4) -> None:
    with native_paths(compiled=True):  # the compiled decoder, under WIREWATCH_PURE_NUMPY=1 too
        compiled = decode(buf, meta, linktype, max_tunnel_depth)
    reference = decode_numpy(buf, meta, linktype, max_tunnel_depth)
    for name in BATCH_FIELDS:
        c, r = getattr(compiled, name), getattr(reference, name)
        assert c.dtype == r.dtype, name
        np.testing.assert_array_equal(c, r, err_msg=name)
    assert (compiled.errors, compiled.non_ip) == (reference.errors, reference.non_ip)


def test_compiled_decoder_is_built():
    """Built either way (ImportError: needs gcc and Python headers); used unless
    WIREWATCH_PURE_NUMPY=1 chooses the numpy reference."""
    assert (decode_mod._compiled is built("_decode")) is not PURE_NUMPY
    assert (decode_mod._compiled is None) is PURE_NUMPY


def test_compiled_decoder_matches_reference_on_the_corpus():
    from conftest import CORPUS

    from wirewatch.capture.pcapfile import read_batches

    packets = 0
    for path in sorted(CORPUS.glob("*.pcap")):
        for raw in read_batches(str(path), 4096):
            assert_same_as_reference(raw.buf, raw.meta, raw.linktype)
            packets += len(raw.meta)
    assert packets > 10_000


SAMPLES = [
    Ether() / TCP4, Ether() / TCP6, Ether() / Dot1Q(vlan=5) / TCP4, Ether() / Dot1AD(vlan=1) / Dot1Q(vlan=2) / TCP6,
    Ether() / IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR()]) / UDP(sport=5, dport=53) / Raw(b"x" * 30),
    Ether() / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / UDP(),
    Ether() / IPv6() / IPv6ExtHdrFragment(offset=0, m=1) / TCP(), Ether() / IPv6() / IPv6ExtHdrFragment(offset=3) / TCP(),
    *[Ether() / f for f in fragment(IP(dst="10.0.0.9") / UDP(dport=7) / Raw(b"y" * 64), fragsize=16)],
    Ether() / IP() / ICMP(type=3, code=3) / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=53, dport=999),
    Ether() / IP() / ICMP(type=8), Ether() / IPv6() / ICMPv6EchoRequest(),
    Ether() / IPv6() / ICMPv6DestUnreach() / IPv6(src="fd00::2", dst="fd00::1") / TCP(sport=80, dport=1234),
    Ether() / IP(proto=47) / Raw(b"gre!"), Ether() / ARP(), Ether(type=0x88CC) / Raw(b"lldp"),
    Ether() / Dot1Q(vlan=7) / ARP(op=2, psrc="10.0.0.5", pdst="10.0.0.6"),
]


def test_arp_addresses():
    """ARP for IPv4 (Ethernet, under a VLAN tag) gives its opcode and protocol addresses; a
    truncated one, another protocol's ARP or an IP packet gives none."""
    frames = [Ether() / ARP(op=1, psrc="10.0.0.5", pdst="10.0.0.77"),
              Ether() / Dot1Q(vlan=7) / ARP(op=2, psrc="10.0.0.77", pdst="10.0.0.5"),
              Ether(bytes(Ether() / ARP(psrc="10.0.0.5", pdst="10.0.0.77"))[:14 + 27]),
              Ether() / ARP(ptype=0x86DD, plen=16, psrc="::1", pdst="::2"), Ether() / IP() / ICMP()]
    datas = [bytes(f) for f in frames]
    offs = np.cumsum([0] + [len(d) for d in datas[:-1]])
    buf, meta = b"".join(datas), np.array([[1, 0, o, len(d)] for o, d in zip(offs, datas)], np.uint32)
    b = decode(buf, meta, 1)
    assert b.arp_op.tolist() == [1, 2, 0, 0, 0]
    assert [str(ipaddress.ip_address(int(a))) for a in b.arp_spa[:2]] == ["10.0.0.5", "10.0.0.77"]
    assert [str(ipaddress.ip_address(int(a))) for a in b.arp_tpa[:2]] == ["10.0.0.77", "10.0.0.5"]
    assert b.arp_spa[2:].tolist() == [0, 0, 0] and b.ipver[:4].tolist() == [0, 0, 0, 0]
    assert_same_as_reference(buf, meta, 1)
LINK = {1: lambda p: bytes(p), 101: lambda p: bytes(p.payload), 0: lambda p: b"\x02\x00\x00\x00" + bytes(p.payload),
        113: lambda p: bytes(CookedLinux(proto=p.type) / p.payload),
        276: lambda p: bytes(CookedLinuxV2(proto=p.type) / p.payload)}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SAMPLES) - 1), st.integers(0, 120),
                          st.lists(st.tuples(st.integers(0, 119), st.integers(0, 255)), max_size=4)),
                min_size=1, max_size=12),
       st.sampled_from(sorted(LINK)), st.integers(0, 3))
def test_compiled_decoder_matches_reference_on_damaged_packets(frames, linktype, lie):
    """Real headers, cut short at random points and with random bytes overwritten."""
    datas = []
    for index, cut, flips in frames:
        data = bytearray(LINK[linktype](SAMPLES[index])[:cut])
        for pos, value in flips:
            if pos < len(data):
                data[pos] = value
        datas.append(bytes(data))
    offs = np.cumsum([0] + [len(d) for d in datas[:-1]])
    meta = np.array([[1_700_000_000 + i, 999_999 - i, o, len(d) + (lie if i == 0 else 0)]
                     for i, (o, d) in enumerate(zip(offs, datas))], np.uint32)
    assert_same_as_reference(b"".join(datas), meta, linktype)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=20), st.sampled_from([0, 1, 101, 108, 113, 276, 12, 229]))
def test_compiled_decoder_matches_reference_on_arbitrary_bytes(frames, linktype):
    buf = b"".join(frames)
    offs = np.cumsum([0] + [len(f) for f in frames[:-1]]) if frames else []
    meta = np.array([[1, 0, o, len(f)] for o, f in zip(offs, frames)], np.uint32).reshape(-1, 4)
    assert_same_as_reference(buf, meta, linktype)


def four_tunnels_deep() -> Ether:
    """IPv6 with a hop-by-hop header, VXLAN, a VLAN tag, GRE, Geneve with options, IPv6 in IPv6,
    then TCP with options and a full-size payload: the four layers decode.max_tunnel_depth allows."""
    from scapy.contrib.geneve import GENEVE
    from scapy.layers.l2 import GRE
    from scapy.layers.vxlan import VXLAN

    inner = (IPv6(src="fd00::1", dst="fd00::2") / IPv6(src="fd00::3", dst="fd00::4")
             / TCP(sport=1, dport=2, flags="PA", options=[("MSS", 1400), ("NOP", None), ("WScale", 7)])
             / Raw(b"p" * 1200))
    geneve = UDP(sport=6, dport=6081) / GENEVE(proto=0x6558, optionlen=4, options=b"\x01" * 16) / Ether(
        src="02:00:00:00:00:05", dst="02:00:00:00:00:06") / inner
    gre = IP(src="10.1.0.1", dst="10.1.0.2", options=[IPOption_RR()]) / GRE() / IP(src="10.2.0.1", dst="10.2.0.2") / geneve
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(src="fd01::1", dst="fd01::2") / \
        IPv6ExtHdrHopByHop() / UDP(sport=7, dport=4789) / VXLAN(vni=1) / Ether(src="02:00:00:00:00:03",
                                                                                dst="02:00:00:00:00:04") / Dot1Q(vlan=3) / gre


def test_headers_snaplen_cuts_no_header_the_decoder_reads(tmp_path):
    """Live capture's default snapshot (headers_snaplen): every packet of both corpora (all shorter
    than it), and full-size ones, one of them four tunnels deep, decode the same cut to it as
    whole (columns, errors, wire lengths)."""
    from conftest import CORPUS

    from wirewatch.capture.pcapfile import read_batches
    from wirewatch.decode import headers_snaplen

    snap = headers_snaplen()
    assert (snap, headers_snaplen(0)) == (832, 320)
    from scapy.layers.vxlan import VXLAN

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    big = [four_tunnels_deep(), e / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="PA") / Raw(b"x" * 1448),
           e / IP(src="10.0.0.3", dst="10.0.0.4") / UDP(sport=5, dport=4789) / VXLAN() / e / IPv6() / UDP()
           / Raw(b"y" * 1300)]
    deep = write_pcap(str(tmp_path / "deep.pcap"), [(BASE_TS + i, p) for i, p in enumerate(big)])
    paths = [deep, *sorted(CORPUS.glob("*.pcap")), *sorted((CORPUS.parent / "corpus-busy").glob("*.pcap*"))]
    cut_rows = 0
    for path in paths:
        for raw in read_batches(str(path), 16384):
            meta = raw.meta.copy()
            meta[:, 3] = np.minimum(meta[:, 3], snap)
            cut_rows += int(np.count_nonzero(meta[:, 3] < raw.meta[:, 3]))
            whole, cut = decode(raw.buf, raw.meta, raw.linktype), decode(raw.buf, meta, raw.linktype)
            for name in BATCH_FIELDS:
                np.testing.assert_array_equal(getattr(cut, name), getattr(whole, name), err_msg=f"{path}: {name}")
            assert (cut.errors, cut.non_ip) == (whole.errors, whole.non_ip), path
            if path == deep:
                assert whole.tunnel[0] > 0xFFF  # four layers
    assert cut_rows == len(big)


def test_monitor_takes_the_headers_snaplen():
    from wirewatch import cli, config
    from wirewatch.decode import headers_snaplen
    from wirewatch.sensor import live_options

    def snaplen(*argv: str, depth: int | None = None) -> int:
        cfg = config.build([("decode", "max_tunnel_depth", depth, "test")] if depth is not None else [])
        return live_options(cli.build_parser().parse_args(["monitor", "-i", "eth0", *argv]), cfg, "eth0").snaplen

    # by default headers only, at the configured tunnel depth; --snaplen overrides it
    assert snaplen() == headers_snaplen() == 832 and snaplen(depth=0) == headers_snaplen(0) == 320
    assert snaplen("--snaplen", "262144") == snaplen("--snaplen", "262144", depth=0) == 262144


@pytest.mark.parametrize("pkt,ttl", [
    (Ether(dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2", ttl=3) / UDP(dport=33434), 3),
    (Ether(dst="02:00:00:00:00:02") / IPv6(src="fd00::1", dst="fd00::2", hlim=200) / UDP(dport=33434), 200),
    # a tunnel: the inner header's TTL, the one its sender chose
    (Ether(dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="192.0.2.2", ttl=60) / IP(src="10.0.0.1", dst="10.0.0.2", ttl=1) / UDP(), 1),
    (Ether(dst="02:00:00:00:00:02") / ARP(), 0),
])
def test_ttl_is_the_innermost_ip_headers_ttl_or_hop_limit(tmp_path, pkt, ttl):
    b = one(tmp_path, pkt)
    assert b.ttl[0] == ttl
    data = bytes(pkt)
    assert_same_as_reference(data, np.array([[1, 0, 0, len(data)]], np.uint32), 1)
