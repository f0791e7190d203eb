"""The packet an ICMP error quotes (RFC 792, 4443): its addresses, protocol and ports, and what
the quote is (QUOTE_IP, QUOTE_CUT by the capture, QUOTE_BAD: no IP header in it), decoded the
same by the compiled decoder and its numpy reference, from pcaps of both byte orders, bounded by
the packet's IP length and its captured length."""

from __future__ import annotations

import pytest
from capfiles import pcap
from conftest import decode_file, native_paths
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from wirewatch.addr import addr_str
from wirewatch.decode import BATCH_FIELDS, QUOTE_BAD, QUOTE_CUT, QUOTE_IP, QUOTE_NONE

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
PROBE4 = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=999, dport=161)
PROBE6 = IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=5, dport=6, flags="S")
ROUTER4, ROUTER6 = IP(src="10.0.0.254", dst="10.0.0.1"), IPv6(src="fd00::fe", dst="fd00::1")
ETH_IP4, ETH_IP6 = 14 + 20 + 8, 14 + 40 + 8  # where an error's quote starts in the frame


def error4(icmp_type: int, code: int = 0, quoted=PROBE4):
    return ETH / ROUTER4 / ICMP(type=icmp_type, code=code) / quoted


# name: (frame, bytes captured (None: all), expected (quote, inner src, inner dst, proto, ports or None))
CASES = {
    "v4 port unreachable": (error4(3, 3), None, (QUOTE_IP, "10.0.0.1", "10.0.0.2", 17, (999, 161))),
    "v4 source quench": (error4(4), None, (QUOTE_IP, "10.0.0.1", "10.0.0.2", 17, (999, 161))),
    "v4 redirect": (ETH / ROUTER4 / ICMP(type=5, code=1, gw="10.0.0.253") / PROBE4, None,
                    (QUOTE_IP, "10.0.0.1", "10.0.0.2", 17, (999, 161))),
    "v4 time exceeded": (error4(11), None, (QUOTE_IP, "10.0.0.1", "10.0.0.2", 17, (999, 161))),
    "v4 parameter problem": (error4(12), None, (QUOTE_IP, "10.0.0.1", "10.0.0.2", 17, (999, 161))),
    "v4 quote with IP options": (error4(3, 3, IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR()]) /
                                        TCP(sport=7, dport=8)), None, (QUOTE_IP, "10.0.0.1", "10.0.0.2", 6, (7, 8))),
    # hping3 --icmp -C 3 -K 3: its default quote, 1.2.3.4 -> 5.6.7.8, TCP, 8 bytes of zeros
    "v4 hping3's forged quote": (error4(3, 3, IP(src="1.2.3.4", dst="5.6.7.8", proto=6) / Raw(b"\0" * 8)), None,
                                 (QUOTE_IP, "1.2.3.4", "5.6.7.8", 6, (0, 0))),
    # nping --icmp-type 3: an 8-byte ICMP header and nothing after it
    "v4 nothing quoted": (ETH / ROUTER4 / ICMP(type=3, code=3), None, (QUOTE_BAD, None, None, 0, None)),
    "v4 quote not IPv4": (error4(3, 3, Raw(b"\x60" + b"\0" * 27)), None, (QUOTE_BAD, None, None, 0, None)),
    "v4 quote with IHL 4": (error4(3, 3, Raw(b"\x44" + b"\0" * 27)), None, (QUOTE_BAD, None, None, 0, None)),
    # bytes after the IP packet (Ethernet padding) that look like a quote are not one
    "v4 padding after an empty error": (bytes(ETH / ROUTER4 / ICMP(type=3, code=3)) + bytes(PROBE4), None,
                                        (QUOTE_BAD, None, None, 0, None)),
    "v4 quote cut by the capture": (error4(3, 3), ETH_IP4 + 10, (QUOTE_CUT, None, None, 0, None)),
    "v4 error header cut": (error4(3, 3), 14 + 20 + 1, (QUOTE_NONE, None, None, 0, None)),
    "v4 ports cut by the capture": (error4(3, 3), ETH_IP4 + 22, (QUOTE_IP, "10.0.0.1", "10.0.0.2", 17, None)),
    "v4 echo request": (ETH / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8) / bytes(PROBE4), None,
                        (QUOTE_NONE, None, None, 0, None)),
    "v6 unreachable": (ETH / ROUTER6 / ICMPv6DestUnreach(code=4) / PROBE6, None,
                       (QUOTE_IP, "fd00::1", "fd00::2", 6, (5, 6))),
    "v6 packet too big": (ETH / ROUTER6 / ICMPv6PacketTooBig(mtu=1280) / PROBE6, None,
                          (QUOTE_IP, "fd00::1", "fd00::2", 6, (5, 6))),
    "v6 time exceeded": (ETH / ROUTER6 / ICMPv6TimeExceeded() / PROBE6, None, (QUOTE_IP, "fd00::1", "fd00::2", 6, (5, 6))),
    "v6 parameter problem": (ETH / ROUTER6 / ICMPv6ParamProblem(ptr=6) / PROBE6, None,
                             (QUOTE_IP, "fd00::1", "fd00::2", 6, (5, 6))),
    "v6 forged quote": (ETH / ROUTER6 / ICMPv6DestUnreach(code=4) / IPv6(src="2001:db8::1", dst="2001:db8::2") /
                        UDP(sport=1, dport=2), None, (QUOTE_IP, "2001:db8::1", "2001:db8::2", 17, (1, 2))),
    "v6 nothing quoted": (ETH / ROUTER6 / ICMPv6DestUnreach(code=4), None, (QUOTE_BAD, None, None, 0, None)),
    "v6 quote not IPv6": (ETH / ROUTER6 / ICMPv6DestUnreach(code=4) / bytes(PROBE4) / Raw(b"\0" * 20), None,
                          (QUOTE_BAD, None, None, 0, None)),
    "v6 quote cut by the capture": (ETH / ROUTER6 / ICMPv6DestUnreach(code=4) / PROBE6, ETH_IP6 + 39,
                                    (QUOTE_CUT, None, None, 0, None)),
    "v6 ports cut by the capture": (ETH / ROUTER6 / ICMPv6DestUnreach(code=4) / PROBE6, ETH_IP6 + 42,
                                    (QUOTE_IP, "fd00::1", "fd00::2", 6, None)),
    "v6 echo request": (ETH / IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest() / bytes(PROBE6), None,
                        (QUOTE_NONE, None, None, 0, None)),
    # inside a tunnel, the quote is the inner packet's
    "v4 unreachable in VXLAN": (ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=4789, dport=4789) / VXLAN(vni=7) /
                                Ether() / ROUTER4 / ICMP(type=3, code=1) / PROBE4, None,
                                (QUOTE_IP, "10.0.0.1", "10.0.0.2", 17, (999, 161))),
}
NAMES = sorted(CASES)


def capture(tmp_path, big: bool) -> str:
    frames = []
    for i, name in enumerate(NAMES):
        frame, captured, _ = CASES[name]
        data = bytes(frame)
        frames.append((1_700_000_000 + i, 0, data[:captured] if captured else data))
    path = tmp_path / f"errors-{'be' if big else 'le'}.pcap"
    path.write_bytes(pcap(frames, big=big))
    return str(path)


@pytest.mark.parametrize("big", [False, True], ids=["little-endian pcap", "big-endian pcap"])
def test_quoted_packet_columns_in_both_decoders(tmp_path, big):
    path = capture(tmp_path, big)
    with native_paths(True):
        compiled = decode_file(path)
    with native_paths(False):
        reference = decode_file(path)
    for field in BATCH_FIELDS:
        assert compiled.__dict__[field].tolist() == reference.__dict__[field].tolist(), field
    assert compiled.errors == reference.errors
    for i, name in enumerate(NAMES):
        quote, src, dst, proto, ports = CASES[name][2]
        got = (int(compiled.quote[i]),
               addr_str(int(compiled.inner_src_hi[i]), int(compiled.inner_src_lo[i])) if quote == QUOTE_IP else None,
               addr_str(int(compiled.inner_dst_hi[i]), int(compiled.inner_dst_lo[i])) if quote == QUOTE_IP else None,
               int(compiled.inner_proto[i]),
               (int(compiled.inner_sport[i]), int(compiled.inner_dport[i])) if compiled.has_inner[i] else None)
        assert got == (quote, src, dst, proto, ports), name
        if quote != QUOTE_IP:  # nothing is read from a quote that is not there
            assert (compiled.inner_src_lo[i], compiled.inner_dst_lo[i], compiled.inner_sport[i]) == (0, 0, 0), name
