"""Packet classifiers on crafted packets: what is a probe, an initiator, an answered ACK probe,
an ICMP request or unreachable."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import decode_file
from crafted import T0
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from wirewatch.craft import write_pcap
from wirewatch.detect.classify.packets import (
    answered_ack_probes,
    forged_error,
    icmp_request,
    icmp_unreachable,
    port_probe,
    proto_name,
    quotes_receiver,
    syn_only,
    udp_initiator,
)

A, B = "10.3.0.1", "10.3.0.2"


def batch(tmp_path, layers):
    pkts = [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / p) for i, p in enumerate(layers)]
    return decode_file(write_pcap(str(tmp_path / "p.pcap"), pkts))


@pytest.mark.parametrize("flags,probe,syn", [("S", True, True), ("F", True, False), ("", True, False),
                                             ("FPU", True, False), ("SA", False, False), ("A", False, False),
                                             ("R", False, False), ("RA", False, False), ("PA", False, False)])
def test_tcp_probes_and_connection_attempts(tmp_path, flags, probe, syn):
    b = batch(tmp_path, [IP(src=A, dst=B) / TCP(sport=40000, dport=22, flags=flags)])
    assert port_probe(b).tolist() == [probe] and syn_only(b).tolist() == [syn]


def test_udp_from_a_service_port_to_a_client_is_an_answer(tmp_path):
    b = batch(tmp_path, [IP(src=A, dst=B) / UDP(sport=40000, dport=53), IP(src=B, dst=A) / UDP(sport=53, dport=40000),
                         IP(src=A, dst=B) / UDP(sport=40000, dport=40001), IP(src=A, dst=B) / UDP(sport=123, dport=123)])
    assert udp_initiator(b).tolist() == [True, False, True, True]


def test_an_ack_refused_with_a_bare_rst_is_a_probe_unless_the_tuple_is_a_live_connection(tmp_path):
    b = batch(tmp_path, [IP(src=A, dst=B) / TCP(sport=51000, dport=80, flags="A"),
                         IP(src=B, dst=A) / TCP(sport=80, dport=51000, flags="R"),
                         IP(src=A, dst=B) / TCP(sport=51001, dport=81, flags="A"),  # nobody answers: invisible
                         IP(src=A, dst=B) / TCP(sport=51002, dport=82, flags="PA") / Raw(b"data"),
                         IP(src=A, dst=B) / TCP(sport=51002, dport=82, flags="A"),
                         IP(src=B, dst=A) / TCP(sport=82, dport=51002, flags="R")])  # data on it: a connection
    acks, rsts = answered_ack_probes(b)
    assert acks.tolist() == [0] and rsts.tolist() == [1]
    assert np.flatnonzero(port_probe(b)).tolist() == [0]


def test_icmp_requests_and_unreachables(tmp_path):
    quoted = IP(src=A, dst=B) / UDP(sport=40000, dport=9)
    b = batch(tmp_path, [IP(src=A, dst=B) / ICMP(type=8), IP(src=B, dst=A) / ICMP(type=0),
                         IP(src=A, dst=B) / ICMP(type=13), IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(),
                         IP(src=B, dst=A) / ICMP(type=3, code=3) / quoted])
    assert icmp_request(b).tolist() == [True, False, True, True, False]
    assert icmp_unreachable(b).tolist() == [False, False, False, False, True]


def test_an_error_answers_its_receiver_only_when_it_quotes_the_receivers_own_packet(tmp_path):
    mine, theirs = IP(src=A, dst=B) / UDP(sport=40000, dport=9), IP(src="1.2.3.4", dst="5.6.7.8") / UDP(sport=1, dport=2)
    b = batch(tmp_path, [IP(src=B, dst=A) / ICMP(type=3, code=3) / mine,  # a real port unreachable
                         IP(src=B, dst=A) / ICMP(type=3, code=3) / theirs,  # hping3 --icmp -C 3's forged quote
                         IP(src=B, dst=A) / ICMP(type=3, code=3),  # nping's: nothing quoted
                         IP(src="10.3.0.254", dst=A) / ICMP(type=11) / mine,  # traceroute's time exceeded
                         IP(src=B, dst=A) / ICMP(type=8) / Raw(bytes(theirs))])  # an echo request is no error
    assert quotes_receiver(b).tolist() == [True, False, False, True, False]
    assert forged_error(b).tolist() == [False, True, True, False, False]
    assert icmp_unreachable(b).tolist() == [True, False, False, False, False]  # only the real one answers a probe


def test_protocol_names():
    assert [proto_name(p) for p in (6, 17, 47)] == ["TCP", "UDP", "GRE"]
