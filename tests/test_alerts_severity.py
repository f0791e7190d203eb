"""Severity that rises with the evidence (each detector's `rises` in its SPEC, schema.severity_of),
on crafted packets with explicit timestamps, and a rise inside the cooldown is an escalation."""

from __future__ import annotations

from conftest import run_packets
from crafted import T0, types
from scapy.layers.inet import IP, TCP

from wirewatch.craft import eth, syn_scan, tcp_handshake, write_syn_storm
from wirewatch.detect.base import Rise
from wirewatch.detect.registry import DETECTORS, severity_for

SCANNER, TARGET = "10.2.0.66", "10.2.0.11"


def test_a_port_scan_that_found_an_open_port_is_more_severe(tmp_path):
    closed, _ = run_packets(tmp_path, syn_scan(T0, SCANNER, TARGET, range(100, 160)), name="closed.pcap")
    opened, _ = run_packets(tmp_path, syn_scan(T0, SCANNER, TARGET, range(100, 160), open_ports=[110]), name="open.pcap")
    (c,), (o,) = types(closed)["port_scan"], types(opened)["port_scan"]
    assert c["evidence"]["answers"]["open"] == 0 and c["alert"]["severity"] == 3
    assert o["evidence"]["answers"]["open"] == 1 and o["alert"]["severity"] == 2


def _udp_scan(answer_from: int | None) -> list:
    """A UDP scan of 40 ports: each answered by ICMP port unreachable, except port 53, which
    answers with a datagram from `answer_from` (53: the probed port, open; another: not an
    answer to a probe) or not at all (None)."""
    from scapy.layers.inet import ICMP, UDP

    pkts = []
    for i, port in enumerate(range(40, 80)):
        t = T0 + i * 0.01
        probe = IP(src=SCANNER, dst=TARGET) / UDP(sport=50000, dport=port)
        pkts.append((t, eth(probe)))
        if port != 53:
            pkts.append((t + 0.001, eth(IP(src=TARGET, dst=SCANNER) / ICMP(type=3, code=3) / bytes(probe))))
        elif answer_from is not None:
            pkts.append((t + 0.001, eth(IP(src=TARGET, dst=SCANNER) / UDP(sport=answer_from, dport=50000) / b"x")))
    return pkts


def test_a_udp_scan_that_found_an_open_port_is_more_severe(tmp_path):
    """A UDP scan could not reach severity 2: an open UDP port answers with a datagram, never a SYN-ACK."""
    found = {}
    for name, answer in (("open", 53), ("silent", None), ("other", 5353)):
        alerts, _ = run_packets(tmp_path, _udp_scan(answer), name=f"{name}.pcap")
        (a,) = types(alerts)["port_scan"]
        found[name] = (a["alert"]["severity"], a["evidence"]["answers"]["open"], a["evidence"]["answers"]["unreachable"])
    assert found == {"open": (2, 1, 39), "silent": (3, 0, 39), "other": (3, 0, 39)}


def _tcp_scan(flags: str, silent: set[int], answer: bool = True) -> list:
    """A TCP scan of 40 ports with `flags` probes: closed ports answer RST+ACK (when `answer`),
    the `silent` ones nothing."""
    pkts = []
    for i, port in enumerate(range(100, 140)):
        t = T0 + i * 0.01
        pkts.append((t, eth(IP(src=SCANNER, dst=TARGET) / TCP(sport=40000, dport=port, flags=flags))))
        if answer and port not in silent:
            pkts.append((t + 0.001, eth(IP(src=TARGET, dst=SCANNER) / TCP(sport=port, dport=40000, flags="RA"))))
    return pkts


def test_a_fin_null_or_xmas_scan_that_found_silent_ports_on_an_answering_host_is_more_severe(tmp_path):
    """FIN/NULL/Xmas scans could not reach severity 2: an open port answers them nothing. On a host
    that answers closed ports RST, the silent ports are open|filtered (nmap's word); a SYN scan's
    silent ports are filtered, and a host that answers nothing tells nothing."""
    found = {}
    for name, flags, silent, answer in (("fin", "F", {110, 125}, True), ("null", "", {110}, True),
                                        ("xmas", "FPU", {110, 125}, True), ("syn", "S", {110, 125}, True),
                                        ("walled", "F", set(), False)):
        alerts, _ = run_packets(tmp_path, _tcp_scan(flags, silent, answer), name=f"{name}.pcap")
        (a,) = types(alerts)["port_scan"]
        found[name] = (a["alert"]["severity"], a["evidence"]["answers"].get("open_or_filtered"))
    assert found == {"fin": (2, 2), "null": (2, 1), "xmas": (2, 2), "syn": (3, None), "walled": (3, None)}


def test_the_first_open_port_of_a_scan_inside_its_cooldown_escalates(tmp_path):
    # 60 closed ports, then 12 s later (after the window, inside the cooldown) 60 more, one open
    pkts = syn_scan(T0, SCANNER, TARGET, range(100, 160)) + syn_scan(T0 + 12, SCANNER, TARGET, range(200, 260),
                                                                      open_ports=[222])
    alerts, _ = run_packets(tmp_path, pkts)
    first, second = types(alerts)["port_scan"]
    assert (first["alert"]["severity"], second["alert"]["severity"]) == (3, 2)
    assert second["escalated_from"]["timestamp"] == first["timestamp"]
    assert "severity 3 -> 2" in second["message"]


def test_a_syn_flood_from_many_sources_is_more_severe_than_from_one(tmp_path):
    one = [(T0 + i / 600, eth(IP(src="10.1.0.1", dst=TARGET) / TCP(sport=1024 + i, dport=80, flags="S")))
           for i in range(600)]
    alerts, _ = run_packets(tmp_path, one, name="one.pcap")
    (a,) = types(alerts)["syn_flood"]
    assert a["evidence"]["distinct_sources"] == 1 and a["alert"]["severity"] == 2
    from conftest import run_file
    path = write_syn_storm(str(tmp_path / "many.pcap"), 2_000, TARGET, 8080, t0=T0, duration=1.0)
    alerts, _ = run_file(path)
    (b,) = types(alerts)["syn_flood"]
    assert b["evidence"]["distinct_sources"] >= 100 and b["alert"]["severity"] == 1


def test_a_completed_connection_to_a_watched_port_is_more_severe_than_a_probe(tmp_path):
    pkts = syn_scan(T0, "10.2.0.5", TARGET, [4444]) + tcp_handshake(T0 + 2, "10.2.0.6", TARGET, 41000, 6667, b"id\n")
    alerts, _ = run_packets(tmp_path, pkts)
    sev = {a["src_ip"]: (a["evidence"].get("completed", False), a["alert"]["severity"]) for a in types(alerts)["suspicious_port"]}
    assert sev == {"10.2.0.5": (False, 2), "10.2.0.6": (True, 1)}


def test_rises_read_nested_evidence_and_never_lower_the_signature():
    r = Rise("answers.open", 1, 2)
    assert r.applies({"answers": {"open": 3}}) and not r.applies({"answers": {"open": 0}})
    assert not r.applies({"answers": 5}) and not r.applies({}) and Rise("completed", 1, 1).applies({"completed": True})
    for spec in DETECTORS:
        assert all(x.severity < spec.signature.severity for x in spec.rises), spec.name  # a rise, not a fall
    assert severity_for("blacklist", {"anything": 10**9}) == 1 and severity_for("port_scan", {}) == 3
