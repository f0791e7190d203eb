"""replies: each answer in a batch, who probed, what was probed and how it answered."""

from __future__ import annotations

from conftest import decode_file
from crafted import T0
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from wirewatch.addr import addr_str
from wirewatch.craft import write_pcap
from wirewatch.detect.classify.replies import CLOSED, OPEN, REPLIED, UNFILTERED, UNREACHABLE, replies

PROBER, TARGET, ROUTER = "10.4.0.66", "10.4.0.1", "10.4.0.254"


def test_each_kind_of_answer_names_prober_target_and_service(tmp_path):
    layers = [IP(src=PROBER, dst=TARGET) / TCP(sport=40000, dport=22, flags="S"),   # a probe: no answer row
              IP(src=TARGET, dst=PROBER) / TCP(sport=22, dport=40000, flags="SA"),  # open
              IP(src=TARGET, dst=PROBER) / TCP(sport=23, dport=40000, flags="RA"),  # closed
              IP(src=TARGET, dst=PROBER) / TCP(sport=80, dport=40000, flags="R"),   # unfiltered (ACK probe)
              IP(src=ROUTER, dst=PROBER) / ICMP(type=3, code=13) / IP(src=PROBER, dst="10.4.0.9") / UDP(sport=1, dport=161),
              IP(src=TARGET, dst=PROBER) / ICMP(type=0),                             # echo reply
              IP(src=TARGET, dst=PROBER) / UDP(sport=53, dport=40000)]
    pkts = [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / p) for i, p in enumerate(layers)]
    r = replies(decode_file(write_pcap(str(tmp_path / "r.pcap"), pkts)))
    assert r.rows.tolist() == [1, 2, 3, 4, 5, 6]
    assert r.kind.tolist() == [OPEN, CLOSED, UNFILTERED, UNREACHABLE, REPLIED, REPLIED]
    assert {addr_str(h, lo) for h, lo in zip(r.prober_hi, r.prober_lo)} == {PROBER}
    targets = [addr_str(h, lo) for h, lo in zip(r.target_hi, r.target_lo)]
    assert targets == [TARGET, TARGET, TARGET, "10.4.0.9", TARGET, TARGET]  # ICMP: the quoted destination
    assert r.service.tolist() == [6 * 65536 + 22, 6 * 65536 + 23, 6 * 65536 + 80, 17 * 65536 + 161,
                                  1 * 65536 + 8, 17 * 65536 + 53]  # echo reply -> the echo request type
