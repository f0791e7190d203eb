"""Link types beyond Ethernet and cooked Linux: PPP, PPP in HDLC framing, Cisco HDLC,
Frame Relay, NFLOG, IEEE 802.11 (bare and with radiotap), Linux IPoIB.

Each is a capture written with that link type around the same IP packets; the decoded
columns hold their addresses and ports, the compiled decoder equals the numpy reference,
and a port scan carried over the link type is reported with the right attacker.
"""

from __future__ import annotations

import struct

import pytest
from conftest import decode_file, run_file
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dot11 import Dot11, Dot11QoS, RadioTap
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import LLC, SNAP
from scapy.layers.ppp import HDLC, PPP
from scapy.packet import Raw
from test_decode import assert_same_as_reference
from test_decode_tunnels import frames_meta

from wirewatch.addr import addr_str
from wirewatch.craft import BASE_TS, write_pcap

ATTACKER, TARGET = "10.20.0.66", "10.20.0.10"
ATTACKER6, TARGET6 = "fd20::66", "fd20::10"


def inner(port: int = 80, v6: bool = False):
    ip = IPv6(src=ATTACKER6, dst=TARGET6) if v6 else IP(src=ATTACKER, dst=TARGET)
    return ip / TCP(sport=40000, dport=port, flags="S")


def nflog(p, family: int = 2) -> bytes:
    """NFLOG: family, version, resource id, then TLVs (little-endian length and type,
    padded to 4 bytes): a hardware-protocol TLV, a prefix TLV, the payload TLV."""
    def tlv(kind: int, value: bytes) -> bytes:
        body = struct.pack("<HH", 4 + len(value), kind) + value
        return body + b"\0" * (-len(body) % 4)
    return bytes([family, 0]) + struct.pack(">H", 0) + tlv(1, b"\x08\x00\x03\x00") + tlv(10, b"wirewatch\0") \
        + tlv(9, bytes(p))


def data_frame(p, **kw):
    kw.setdefault("FCfield", 1)  # to the distribution system
    return Dot11(type=2, subtype=0, addr1="02:00:00:00:00:02", addr2="02:00:00:00:00:01",
                 addr3="02:00:00:00:00:03", **kw) / LLC() / SNAP() / p


def qos_frame(p):
    return Dot11(type=2, subtype=8, FCfield=2, addr1="02:00:00:00:00:02", addr2="02:00:00:00:00:01",
                 addr3="02:00:00:00:00:03") / Dot11QoS(TID=5) / LLC() / SNAP() / p


def wds_frame(p):
    return Dot11(type=2, subtype=0, FCfield=3, addr1="02:00:00:00:00:02",
                 addr2="02:00:00:00:00:01", addr3="02:00:00:00:00:03", addr4="02:00:00:00:00:04") / LLC() / SNAP() / p


IPOIB_PSEUDO = bytes(range(40))  # the Linux pseudo-header: destination and source hardware addresses

# name -> (link type, wrap an IP packet as that link's frame, inner is IPv6)
LINKS = {
    "ppp": (9, lambda p: bytes(PPP(proto=0x0021) / p), False),
    "ppp_address_control": (9, lambda p: bytes(HDLC() / PPP(proto=0x0021) / p), False),
    "ppp_compressed_protocol_ipv6": (9, lambda p: b"\x57" + bytes(p), True),
    "ppp_in_hdlc": (50, lambda p: bytes(HDLC() / PPP(proto=0x0021) / p), False),
    "ppp_in_hdlc_ipv6": (50, lambda p: bytes(HDLC() / PPP(proto=0x0057) / p), True),
    "ppp_in_hdlc_cisco_frame": (50, lambda p: b"\x0f\x00\x08\x00" + bytes(p), False),
    "cisco_hdlc": (104, lambda p: b"\x0f\x00\x08\x00" + bytes(p), False),
    "cisco_hdlc_ipv6_broadcast": (104, lambda p: b"\x8f\x00\x86\xdd" + bytes(p), True),
    "frame_relay_nlpid": (107, lambda p: b"\x18\x41\x03\xcc" + bytes(p), False),
    "frame_relay_nlpid_ipv6": (107, lambda p: b"\x18\x41\x03\x8e" + bytes(p), True),
    "frame_relay_snap": (107, lambda p: b"\x18\x41\x03\x00\x80\x00\x00\x00\x08\x00" + bytes(p), False),
    "frame_relay_cisco": (107, lambda p: b"\x18\x41\x08\x00" + bytes(p), False),
    "frame_relay_3_byte_address": (107, lambda p: b"\x18\x40\x01\x03\xcc" + bytes(p), False),
    "nflog": (239, nflog, False),
    "nflog_ipv6": (239, lambda p: nflog(p, 10), True),
    "radiotap_data": (127, lambda p: bytes(RadioTap() / data_frame(p)), False),
    "radiotap_qos_data_ipv6": (127, lambda p: bytes(RadioTap() / qos_frame(p)), True),
    "radiotap_four_address": (127, lambda p: bytes(RadioTap() / wds_frame(p)), False),
    "ieee802_11_data": (105, lambda p: bytes(data_frame(p)), False),
    "ipoib": (242, lambda p: IPOIB_PSEUDO + b"\x08\x00\x00\x00" + bytes(p), False),
    "ipoib_ipv6": (242, lambda p: IPOIB_PSEUDO + b"\x86\xdd\x00\x00" + bytes(p), True),
}


def write(tmp_path, linktype: int, frames: list[bytes]) -> str:
    return write_pcap(str(tmp_path / "l.pcap"), [(BASE_TS + i * 0.01, Raw(f)) for i, f in enumerate(frames)],
                      linktype=linktype)


@pytest.mark.parametrize("name", sorted(LINKS))
def test_ip_over_the_link_type_is_decoded(tmp_path, name):
    linktype, wrap, v6 = LINKS[name]
    frame = wrap(inner(8080, v6))
    b = decode_file(write(tmp_path, linktype, [frame]))
    assert addr_str(b.src_hi[0], b.src_lo[0]) == (ATTACKER6 if v6 else ATTACKER)
    assert addr_str(b.dst_hi[0], b.dst_lo[0]) == (TARGET6 if v6 else TARGET)
    assert (b.ipver[0], b.proto[0], b.sport[0], b.dport[0], b.tcp_flags[0]) == (6 if v6 else 4, 6, 40000, 8080, 0x02)
    assert not b.errors and b.non_ip == 0 and b.tunnel[0] == 0
    assert_same_as_reference(*frames_meta([frame]), linktype)


@pytest.mark.parametrize("name", ["ppp", "ppp_in_hdlc", "cisco_hdlc", "frame_relay_nlpid", "nflog",
                                  "radiotap_qos_data_ipv6", "ieee802_11_data", "ipoib"])
def test_port_scan_over_the_link_type_is_reported(tmp_path, name):
    linktype, wrap, v6 = LINKS[name]
    alerts, _ = run_file(write(tmp_path, linktype, [wrap(inner(port, v6)) for port in range(2000, 2030)]))
    scans = [a for a in alerts if a["type"] == "port_scan"]
    assert [a["src_ip"] for a in scans] == [ATTACKER6 if v6 else ATTACKER]
    assert scans[0]["dest_ip"] == (TARGET6 if v6 else TARGET) and "tunnel" not in scans[0]["evidence"]


def test_frames_that_carry_no_ip_are_counted_as_non_ip(tmp_path):
    cases = {
        9: [bytes(PPP(proto=0xC021) / Raw(b"\x01\x01\x00\x04"))],  # LCP
        104: [b"\x8f\x00\x80\x35" + b"\x00" * 20],  # SLARP
        127: [bytes(RadioTap() / Dot11(type=0, subtype=8) / Raw(b"\x00" * 30)),  # beacon
              bytes(RadioTap() / data_frame(inner(), FCfield=0x41)),  # encrypted
              bytes(RadioTap() / Dot11(type=2, subtype=4))],  # null data
        239: [bytes([2, 0, 0, 0]) + struct.pack("<HH", 8, 10) + b"abcd"],  # no payload TLV
    }
    for linktype, frames in cases.items():
        b = decode_file(write(tmp_path, linktype, frames))
        assert (b.ipver == 0).all() and b.non_ip == len(frames) and not b.errors, linktype
        assert_same_as_reference(*frames_meta(frames), linktype)


SAMPLES = [(linktype, wrap(inner(1 + i, v6))) for i, (linktype, wrap, v6) in enumerate(LINKS.values())]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(SAMPLES) - 1),
       st.lists(st.tuples(st.integers(0, len(SAMPLES) - 1), st.integers(0, 140),
                          st.lists(st.tuples(st.integers(0, 139), st.integers(0, 255)), max_size=4)),
                min_size=1, max_size=10))
def test_compiled_decoder_matches_reference_on_damaged_link_frames(which, frames):
    """Frames of one link type (and others' frames read as that type), cut short and with
    random bytes overwritten: compiled and numpy decoders agree field for field."""
    linktype = SAMPLES[which][0]
    datas = []
    for index, cut, flips in frames:
        data = bytearray(SAMPLES[index][1][:cut])
        for pos, value in flips:
            if pos < len(data):
                data[pos] = value
        datas.append(bytes(data))
    assert_same_as_reference(*frames_meta(datas), linktype)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=20),
       st.sampled_from([9, 50, 104, 105, 107, 127, 239, 242]))
def test_compiled_decoder_matches_reference_on_arbitrary_bytes(frames, linktype):
    assert_same_as_reference(*frames_meta(frames), linktype)
