"""A flood from many (forged) sources explains the single packets it sends to watched ports of
its victim (correlate.py): they join the flood alert's evidence, and accuse no random address."""

from __future__ import annotations

from pathlib import Path

from conftest import decode_file, run_file, run_packets
from crafted import T0, types
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from wirewatch.craft import eth, tcp_handshake, write_syn_storm
from wirewatch.decode import TCP_ACK, TCP_RST, TCP_SYN
from wirewatch.detect.suspicious_port import DEFAULT_PORTS

HELD_OUT = Path(__file__).resolve().parent / "heldout"
VICTIM = "10.5.0.11"


def test_a_random_source_flood_of_every_port_accuses_no_forged_source():
    """Recorded (held-out lab): `hping3 -S -p ++1 --rand-source --faster` against one host, its
    first 2,500 packets: each SYN from another random address to the next port, so ports 23, 1337
    and 2323 get one SYN each from a forged source. Before: a syn_flood alert plus one
    suspicious_port alert per watched port, each accusing a random address."""
    path = str(HELD_OUT / "ha27_synflood_randsrc_many_ports_head.pcap")
    b = decode_file(path)
    syn = (b.proto == 6) & ((b.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN)
    watched = sorted({int(p) for p in b.dport[syn].tolist() if p in DEFAULT_PORTS})
    assert watched == [23, 1337, 2323]
    alerts, engine = run_file(path)
    by = types(alerts + engine.alerts.finish())
    assert set(by) == {"syn_flood"}
    (flood,) = by["syn_flood"]
    assert flood.get("src_ip") is None and flood["evidence"]["distinct_sources"] > 1000
    assert flood["evidence"]["watched_ports_touched"] == watched
    assert flood["evidence"]["watched_port_probes"] == len(watched)


def test_a_probe_that_is_more_than_one_packet_still_alerts_during_a_flood(tmp_path):
    storm = str(tmp_path / "storm.pcap")
    write_syn_storm(storm, 3000, VICTIM, 80, duration=3.0)
    real = [(T0 + 1.0 + i * 0.1, eth(IP(src="10.5.0.66", dst=VICTIM) / TCP(sport=41000, dport=4444, flags="S")))
            for i in range(3)]  # one real source retrying 4444
    real += tcp_handshake(T0 + 1.5, "10.5.0.67", VICTIM, 42000, 31337, b"id\n")  # a completed session
    pkts = sorted([(float(p.time), p) for p in rdpcap(storm)] + real, key=lambda x: x[0])
    alerts, engine = run_packets(tmp_path, pkts)
    by = types(alerts + engine.alerts.finish())
    assert {a["src_ip"] for a in by["suspicious_port"]} == {"10.5.0.66", "10.5.0.67"}
    assert by["syn_flood"][0].get("src_ip") is None


def test_a_one_source_flood_explains_no_other_sources_probe(tmp_path):
    flood = [(T0 + i * 0.001, eth(IP(src="10.5.0.70", dst=VICTIM) / TCP(sport=1024 + i, dport=80, flags="S")))
             for i in range(600)]
    probe = [(T0 + 0.3, eth(IP(src="10.5.0.71", dst=VICTIM) / TCP(sport=43000, dport=23, flags="S")))]
    alerts, engine = run_packets(tmp_path, sorted(flood + probe, key=lambda x: x[0]))
    by = types(alerts + engine.alerts.finish())
    assert by["syn_flood"][0]["src_ip"] == "10.5.0.70"
    (probe_alert,) = by["suspicious_port"]
    assert probe_alert["src_ip"] == "10.5.0.71"
