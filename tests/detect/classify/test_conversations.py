"""classify/conversations.py: which packets show that a probed service was really used."""

from __future__ import annotations

from conftest import decode_file
from scapy.layers.inet import ICMP, IP, TCP, UDP

from wirewatch.addr import addr_str
from wirewatch.craft import BASE_TS, eth, write_pcap
from wirewatch.detect.classify.conversations import conversations

C, S = "10.7.0.5", "10.7.0.80"


def triples(tmp_path, pkts) -> set[tuple[str, str, int, int]]:
    b = decode_file(write_pcap(str(tmp_path / "c.pcap"), [(BASE_TS + i * 0.001, p) for i, p in enumerate(pkts)]))
    c = conversations(b)
    return {(addr_str(ph, pl), addr_str(th, tl), int(s) // 65536, int(s) % 65536) for ph, pl, th, tl, s in
            zip(c.prober_hi, c.prober_lo, c.target_hi, c.target_lo, c.service)}


def test_tcp_data_either_way_marks_the_clients_use_of_the_server_port(tmp_path):
    request = eth(IP(src=C, dst=S) / TCP(sport=40000, dport=443, flags="PA") / b"hello")
    acked = eth(IP(src=S, dst=C) / TCP(sport=443, dport=40000, flags="A"))
    response = eth(IP(src=S, dst=C) / TCP(sport=443, dport=40000, flags="PA") / b"world")
    assert (C, S, 6, 443) in triples(tmp_path, [request, acked])  # an upload the server acknowledges
    assert (C, S, 6, 443) in triples(tmp_path, [response])  # a download whose client only ACKs


def test_data_the_target_never_answered_or_reset_is_no_conversation(tmp_path):
    """A sweeper that follows each SYN with one unsolicited byte has used nothing."""
    request = eth(IP(src=C, dst=S) / TCP(sport=40000, dport=443, flags="PA") / b"x")
    reset = eth(IP(src=S, dst=C) / TCP(sport=443, dport=40000, flags="R"))
    other = eth(IP(src=S, dst=C) / TCP(sport=443, dport=40001, flags="A"))  # another connection
    for pkts in ([request], [request, reset], [request, other]):
        # (the data still reads as the prober's own port answering: harmless, it is not a probe)
        assert (C, S, 6, 443) not in triples(tmp_path, pkts)


def test_handshake_flags_and_resets_are_not_conversations(tmp_path):
    pkts = [eth(IP(src=C, dst=S) / TCP(sport=40000, dport=22, flags=f)) for f in ("S", "A", "R", "FA")]
    pkts.append(eth(IP(src=S, dst=C) / TCP(sport=22, dport=40000, flags="SA")))
    assert triples(tmp_path, pkts) == set()


def test_a_udp_answer_from_the_probed_port_marks_it_and_icmp_never_does(tmp_path):
    answer = eth(IP(src=S, dst=C) / UDP(sport=53, dport=50000) / (b"x" * 20))
    assert triples(tmp_path, [answer]) == {(C, S, 17, 53)}
    assert triples(tmp_path, [eth(IP(src=S, dst=C) / ICMP(type=0))]) == set()


def test_a_transfer_is_one_triple_each_way_however_many_segments(tmp_path):
    """Each (prober, target, service) once per batch, in order of first occurrence: its users
    only mark it, and a download repeats it in every data segment."""
    other = "10.7.0.81"
    pkts = []
    for i in range(50):
        pkts.append(eth(IP(src=S, dst=C) / TCP(sport=443, dport=40000, flags="PA", seq=i * 10) / (b"d" * 10)))
        pkts.append(eth(IP(src=C, dst=S) / TCP(sport=40000, dport=443, flags="A")))
        pkts.append(eth(IP(src=other, dst=C) / UDP(sport=53, dport=50000) / (b"x" * 20)))
    b = decode_file(write_pcap(str(tmp_path / "c.pcap"), [(BASE_TS + i * 0.001, p) for i, p in enumerate(pkts)]))
    c = conversations(b)
    got = [(addr_str(ph, pl), addr_str(th, tl), int(s)) for ph, pl, th, tl, s in
           zip(c.prober_hi, c.prober_lo, c.target_hi, c.target_lo, c.service)]
    # the acknowledged segments also read as the client's port 40000 answering the server (harmless)
    assert got == [(S, C, 6 * 65536 + 40000), (C, S, 6 * 65536 + 443), (C, other, 17 * 65536 + 53)]
