"""unusual_protocol: an IP protocol scan (nmap -sO, one packet of each protocol number to
one host) at threshold - 1 and threshold, naming the prober (issue 10)."""

from __future__ import annotations

from conftest import run_packets
from scapy.layers.inet import IP
from scapy.packet import Raw

from wirewatch.craft import BASE_TS, eth

PROBER, TARGET = "10.5.0.66", "10.5.0.11"
NORMAL = {1, 2, 6, 17, 58}  # allowed by default: not counted


def protocol_scan(protocols: list[int], gap: float = 0.004) -> list:
    return [(BASE_TS + i * gap, eth(IP(src=PROBER, dst=TARGET, proto=n) / Raw(b"\x00" * 8)))
            for i, n in enumerate(protocols)]


def scans(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["type"] == "unusual_protocol" and a["evidence"].get("protocol_scan")]


def test_protocol_scan_threshold(tmp_path):
    odd = [n for n in range(3, 256) if n not in NORMAL]
    assert run_packets(tmp_path, protocol_scan(odd[:7]))[0] == []  # one packet each: below every threshold
    fired = scans(run_packets(tmp_path, protocol_scan(odd[:8]))[0])
    assert len(fired) == 1 and fired[0]["src_ip"] == PROBER and fired[0]["dest_ip"] == TARGET
    assert fired[0]["evidence"]["distinct_protocols"] == 8


def test_nmap_so_all_protocols_names_the_prober(tmp_path):
    alerts, _ = run_packets(tmp_path, protocol_scan([n for n in range(256) if n not in (6, 17)]))
    fired = scans(alerts)
    assert len(fired) == 1 and fired[0]["src_ip"] == PROBER
    assert {a["src_ip"] for a in alerts} == {PROBER}


def test_retransmitted_protocol_scan_is_one_alert(tmp_path):
    """nmap -sO against a host that rate-limits its ICMP protocol unreachables: every unanswered
    protocol's probe is sent again and again (up to ten times, recorded: 35 protocols 3-10 times).
    The repeats are the scan's: one protocol-scan alert, no alert per protocol number; a source
    below scan_threshold still gets its per-protocol alert (3 packets of each of 7 protocols)."""
    odd = [n for n in range(3, 256) if n not in NORMAL]
    for protocols, per_protocol in ((odd[:40], False), (odd[:7], True)):
        rounds = protocol_scan(protocols * 4, gap=0.01)  # 4 rounds, 0.4 s apart: within one window
        alerts, _ = run_packets(tmp_path, rounds)
        kinds = sorted(a["evidence"].get("protocol") for a in alerts if not a["evidence"].get("protocol_scan"))
        assert kinds == (sorted(protocols) if per_protocol else [])
        assert len(scans(alerts)) == (0 if per_protocol else 1)
        assert {a["src_ip"] for a in alerts} == {PROBER}
