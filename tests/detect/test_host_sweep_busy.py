"""host_sweep on busy networks (issue 10): browsing is not sweeping, slow sweeps need the
long window, and a one-way capture of an ACK ping sweep is still a sweep."""

from __future__ import annotations

from conftest import run_packets
from scapy.layers.inet import IP, TCP

from wirewatch.craft import BASE_TS, eth, tcp_handshake

T0 = BASE_TS
SWEEPER = "10.2.0.66"


def site(i: int) -> str:
    return f"10.2.{i // 200 + 1}.{i % 200 + 10}"


def sweeps(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["type"] == "host_sweep"]


def syn_answered_by_rst(t: float, dst: str, port: int = 445) -> list:
    return [(t, eth(IP(src=SWEEPER, dst=dst) / TCP(sport=41000, dport=port, flags="S"))),
            (t + 0.0005, eth(IP(src=dst, dst=SWEEPER) / TCP(sport=port, dport=41000, flags="RA")))]


def browse(n: int, t0: float = T0, gap: float = 0.3) -> list:
    """One address (a NAT) fetches a page from each of n web sites: complete, with data."""
    pkts = []
    for i in range(n):
        pkts += tcp_handshake(t0 + i * gap, SWEEPER, site(i), 30000 + i, 80, b"GET / HTTP/1.1\r\n\r\n")
    return pkts


def test_browsing_many_sites_is_not_a_sweep(tmp_path):
    alerts, _ = run_packets(tmp_path, browse(40))
    assert sweeps(alerts) == []


def test_same_hosts_without_conversations_are_a_sweep(tmp_path):
    def half_open(n):  # the same SYNs, answered, but nothing ever sent: a SYN sweep of port 80
        return sorted((p for i in range(n) for p in syn_answered_by_rst(T0 + i * 0.3, site(i), 80)), key=lambda p: p[0])
    assert sweeps(run_packets(tmp_path, half_open(14))[0]) == []
    fired = sweeps(run_packets(tmp_path, half_open(15))[0])
    assert len(fired) == 1 and fired[0]["src_ip"] == SWEEPER and fired[0]["dest_port"] == 80
    assert fired[0]["evidence"]["distinct_hosts"] == 15 and fired[0]["evidence"]["mode"] == "short window"


def test_sweep_hidden_among_browsing_counts_only_the_probed_hosts(tmp_path):
    pkts = browse(30)
    pkts += [p for i in range(15) for p in syn_answered_by_rst(T0 + 0.1 + i * 0.2, site(100 + i), 80)]
    fired = sweeps(run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))[0])
    assert len(fired) == 1
    ev = fired[0]["evidence"]
    assert ev["distinct_hosts"] == 15 and ev["conversations"] > 0
    assert set(ev["sample_hosts"]) <= {site(100 + i) for i in range(15)}


def slow_sweep(n: int, gap: float = 1.6) -> list:
    return [p for i in range(n) for p in syn_answered_by_rst(T0 + i * gap, site(i))]


def test_slow_sweep_threshold_in_the_long_window(tmp_path):
    assert sweeps(run_packets(tmp_path, slow_sweep(14))[0]) == []  # never more than 7 hosts in 10 s
    fired = sweeps(run_packets(tmp_path, slow_sweep(15))[0])
    assert len(fired) == 1 and fired[0]["src_ip"] == SWEEPER
    ev = fired[0]["evidence"]
    assert ev["mode"] == "long window (slow sweep)" and ev["distinct_hosts"] == 15 and ev["window_s"] == 120.0
    assert ev["answers"]["replied"] >= 14  # the last RST may come after the alert


def ack_pings(n: int, span: float = 0.007) -> list:
    """nmap -PA80 seen one way: a bare ACK to each host, no replies in the capture."""
    return [(T0 + i * span / n, eth(IP(src=SWEEPER, dst=site(i)) / TCP(sport=52000, dport=80, flags="A", ack=12345)))
            for i in range(n)]


def test_one_way_ack_ping_sweep(tmp_path):
    assert sweeps(run_packets(tmp_path, ack_pings(14))[0]) == []
    fired = sweeps(run_packets(tmp_path, ack_pings(15))[0])
    assert len(fired) == 1 and fired[0]["evidence"]["distinct_hosts"] == 15
    big = sweeps(run_packets(tmp_path, ack_pings(256))[0])
    assert big[0]["src_ip"] == SWEEPER and big[0]["evidence"]["distinct_hosts"] == 256
    assert big[0]["evidence"]["service"] == "TCP port 80"


def test_acks_of_established_connections_are_not_pings(tmp_path):
    # the client of a download only acknowledges; the server's data makes it a conversation
    pkts = []
    for i in range(30):
        t, srv = T0 + i * 0.01, site(i)
        pkts.append((t, eth(IP(src=srv, dst=SWEEPER) / TCP(sport=443, dport=33000 + i, flags="PA") / (b"x" * 500))))
        pkts.append((t + 0.001, eth(IP(src=SWEEPER, dst=srv) / TCP(sport=33000 + i, dport=443, flags="A"))))
        pkts.append((t + 0.002, eth(IP(src=SWEEPER, dst=srv) / TCP(sport=33000 + i, dport=443, flags="A"))))
    assert sweeps(run_packets(tmp_path, pkts)[0]) == []


def test_unsolicited_data_after_each_syn_does_not_hide_a_sweep(tmp_path):
    """An evasion: one data byte after each SYN, never answered, must not pass for browsing."""
    pkts = []
    for i in range(59):
        t = T0 + i * 0.05
        pkts.append((t, eth(IP(src=SWEEPER, dst=site(i)) / TCP(sport=40000 + i, dport=22, flags="S"))))
        pkts.append((t + 0.01, eth(IP(src=SWEEPER, dst=site(i)) / TCP(sport=40000 + i, dport=22, flags="PA", seq=1,
                                                                     ack=1) / b"x")))
    alerts, _ = run_packets(tmp_path, pkts)
    assert [a["src_ip"] for a in sweeps(alerts)] == [SWEEPER]
