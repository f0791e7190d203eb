"""failed_handshake: attempts refused by RST, unanswered, or answered by ICMP unreachable."""

from __future__ import annotations

import pytest
from conftest import run_file, run_packets
from crafted import ADDRS, T0, host, ip, many, syn, types
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from wirewatch.craft import write_pcap
from wirewatch.schema import format_ts


def failures(v, n, answer="RA", gap=0.3):
    pkts = []
    a, b = ADDRS[v][0], host(v, 0)
    for i in range(n):
        t = T0 + i * gap
        pkts.append(syn(v, a, b, 30000 + i, 8081, t))
        if answer:
            pkts.append((t + 0.001, Ether(dst="02:00:00:00:00:02") / ip(v, b, a) / TCP(sport=8081, dport=30000 + i, flags=answer)))
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_failed_handshake_rst_threshold(tmp_path, v):
    assert "failed_handshake" not in types(run_packets(tmp_path, failures(v, 7))[0])
    fired = types(run_packets(tmp_path, failures(v, 8))[0])["failed_handshake"]
    ev = fired[0]["evidence"]
    assert ev["failed_handshakes"] == 8 and ev["answered_rst"] == 8 and ev["ports"] == [8081]


def test_failed_handshake_unanswered_times_out(tmp_path):
    pkts = failures(4, 8, answer=None) + [(T0 + 10, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.9", dst="10.1.0.8") / UDP(sport=1, dport=2))]
    fired = types(run_packets(tmp_path, pkts)[0])["failed_handshake"]
    assert fired[0]["evidence"]["unanswered"] == 8


def test_failed_handshake_icmp_unreachable(tmp_path):
    pkts = []
    for i in range(8):
        t = T0 + i * 0.3
        probe = IP(src="10.1.0.66", dst="10.1.0.1") / TCP(sport=30000 + i, dport=443, flags="S")
        pkts += [(t, Ether(dst="02:00:00:00:00:02") / probe), (t + 0.001, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.254", dst="10.1.0.66") / ICMP(type=3, code=13) / probe)]
    assert types(run_packets(tmp_path, pkts)[0])["failed_handshake"][0]["evidence"]["icmp_unreachable"] == 8


def test_failed_handshake_state_bounded_under_source_flood(tmp_path):
    cap = 32
    pkts = []
    for i in range(20 * cap):  # 10x the cap of forged sources, each refused twice: past the doorkeeper
        src, t = many(4, i // 2), T0 + i * 0.001
        pkts += [syn(4, src, "10.1.0.1", 20000 + i, 22, t),
                 (t + 0.0002, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst=src) / TCP(sport=22, dport=20000 + i, flags="RA"))]
    pkts += failures(4, 8, gap=0.02)  # the real one: past the noise's two failures before the table fills
    alerts, engine = run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]),
                                 {"detect.failed_handshake.max_sources": cap})
    assert [a["src_ip"] for a in alerts if a["type"] == "failed_handshake"] == [ADDRS[4][0]]
    st = engine.summary()["detector_state"]
    assert st["failed_handshake_groups"] <= cap and st["failed_handshake_items"] <= 4 * cap
    assert st["failed_handshake_evicted"] > 0  # (the handshake tracker's own cap: test_syn_flood)


def test_failed_handshake_times_run_from_the_first_failure_when_rows_are_reused(tmp_path):
    """Timeouts found by one sweep come in table-row order; a freed row is reused by a later
    SYN before an earlier one (the free rows are a stack), yet the alert's first_seen is the
    earliest failure and comes before its last_seen."""
    wire = Ether(dst="02:00:00:00:00:02")
    good = []
    for port in (3000, 3001):  # two handshakes completed in one batch free two rows
        good += [syn(4, "10.1.0.70", "10.1.0.9", port, 443, T0),
                 (T0 + 0.01, wire / IP(src="10.1.0.9", dst="10.1.0.70") / TCP(sport=443, dport=port, flags="SA")),
                 (T0 + 0.02, wire / IP(src="10.1.0.70", dst="10.1.0.9") / TCP(sport=port, dport=443, flags="A"))]
    good.sort(key=lambda p: p[0])
    pkts = good + failures(4, 8, answer=None, gap=0.3)
    pkts = [(t + (0.5 if i >= len(good) else 0), p) for i, (t, p) in enumerate(pkts)]
    pkts.append((T0 + 20, wire / IP(src="10.1.0.9", dst="10.1.0.8") / UDP(sport=1, dport=2)))
    path = write_pcap(str(tmp_path / "reuse.pcap"), pkts)
    alerts, _ = run_file(path, batch_size=len(good))
    ev = types(alerts)["failed_handshake"][0]["evidence"]
    assert ev["unanswered"] == 8
    assert ev["first_seen"] == format_ts(T0 + 0.5 + 3.0)  # the first SYN's timeout
    assert ev["first_seen"] <= ev["last_seen"]
