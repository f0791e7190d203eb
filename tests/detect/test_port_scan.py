"""port_scan: thresholds of both windows, stealth/UDP/ACK/fragmented probes, servers' replies,
decoys, and state that stays bounded under a flood of forged sources."""

from __future__ import annotations

import json

import pytest
from conftest import cli, run_packets, write_pcap
from crafted import ADDRS, T0, host, ip, many, scan, syn, types
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether


@pytest.mark.parametrize("v", [4, 6])
def test_port_scan_threshold(tmp_path, v):
    assert "port_scan" not in types(run_packets(tmp_path, scan(v, 19))[0])
    fired = types(run_packets(tmp_path, scan(v, 20))[0])["port_scan"]
    assert len(fired) == 1 and fired[0]["src_ip"] == ADDRS[v][0]
    assert fired[0]["evidence"]["distinct_ports"] == 20 and fired[0]["evidence"]["mode"] == "short window"


def test_port_scan_counts_stealth_and_udp_probes(tmp_path):
    flags = ["F", "", "FPU", "SF"]
    pkts = [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / TCP(sport=5, dport=100 + i, flags=flags[i % 4]))
            for i in range(12)]
    pkts += [(T0 + 1 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.66", dst="10.1.0.1") / UDP(sport=5000, dport=200 + i)) for i in range(8)]
    assert types(run_packets(tmp_path, pkts)[0])["port_scan"][0]["evidence"]["distinct_ports"] == 20


def ack_scan(v: int, ports: int, answered: bool = True, gap: float = 0.002, flags: str = "A"):
    """nmap -sA: bare ACKs to many ports (flags="FA": nmap -sM, the Maimon scan's FIN+ACKs);
    an unfiltered target answers each with a bare RST."""
    scanner, target = ADDRS[v][0], host(v, 0)
    pkts = []
    for p in range(ports):
        t = T0 + p * gap
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / ip(v, scanner, target) / TCP(sport=51000, dport=1000 + p, flags=flags)))
        if answered:
            pkts.append((t + 0.0002, Ether(dst="02:00:00:00:00:02") / ip(v, target, scanner) / TCP(sport=1000 + p, dport=51000, flags="R")))
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_ack_scan_counts_probes_answered_by_bare_rst(tmp_path, v):
    assert "port_scan" not in types(run_packets(tmp_path, ack_scan(v, 19))[0])
    fired = types(run_packets(tmp_path, ack_scan(v, 20))[0])["port_scan"]
    assert len(fired) == 1 and fired[0]["src_ip"] == ADDRS[v][0] and fired[0]["dest_ip"] == host(v, 0)
    assert fired[0]["evidence"]["answers"]["unfiltered"] == 20 and fired[0]["evidence"]["answers"]["closed"] == 0


@pytest.mark.parametrize("v", [4, 6])
def test_maimon_scan_counts_fin_acks_answered_by_bare_rst(tmp_path, v):
    """nmap -sM sends FIN+ACK to every port; a Linux or Windows target resets each one."""
    assert "port_scan" not in types(run_packets(tmp_path, ack_scan(v, 19, flags="FA"))[0])
    fired = types(run_packets(tmp_path, ack_scan(v, 20, flags="FA"))[0])["port_scan"]
    assert len(fired) == 1 and fired[0]["src_ip"] == ADDRS[v][0] and fired[0]["evidence"]["distinct_ports"] == 20


def test_connections_closed_with_fin_ack_and_reset_are_not_probes(tmp_path):
    """A client closing 30 connections (data first) to 30 ports of one server, each close answered by
    a bare RST from a server that already dropped them, and a server closing its side from port 80
    towards 30 client ports with the same answer: connections, not a Maimon scan."""
    e = Ether(dst="02:00:00:00:00:02")
    cli_, srv = "10.1.0.21", "10.1.0.1"
    pkts = []
    for p in range(30):
        t = T0 + p * 0.01
        pkts += [(t, e / IP(src=cli_, dst=srv) / TCP(sport=40000 + p, dport=3000 + p, flags="PA") / b"hello"),
                 (t + 0.001, e / IP(src=srv, dst=cli_) / TCP(sport=3000 + p, dport=40000 + p, flags="A")),
                 (t + 0.002, e / IP(src=cli_, dst=srv) / TCP(sport=40000 + p, dport=3000 + p, flags="FA")),
                 (t + 0.003, e / IP(src=srv, dst=cli_) / TCP(sport=3000 + p, dport=40000 + p, flags="R")),
                 (t + 0.004, e / IP(src=srv, dst=cli_) / TCP(sport=80, dport=50000 + p, flags="FA")),
                 (t + 0.005, e / IP(src=cli_, dst=srv) / TCP(sport=50000 + p, dport=80, flags="R"))]
    assert "port_scan" not in types(run_packets(tmp_path, pkts)[0])


def test_acks_that_are_not_refused_are_not_probes(tmp_path):
    # live connections to 40 ports (ACKs nobody refuses), an unanswered ACK scan, and SYN-flood
    # backscatter (SYN-ACKs refused by bare RSTs): no port scan anywhere
    pkts = ack_scan(4, 40, answered=False)
    for p in range(40):
        t = T0 + 1 + p * 0.002
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.77") / TCP(sport=80, dport=2000 + p, flags="SA")))
        pkts.append((t + 0.0002, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.77", dst="10.1.0.1") / TCP(sport=2000 + p, dport=80, flags="R")))
    assert run_packets(tmp_path, sorted(pkts, key=lambda x: x[0]))[0] == []


def test_target_refusing_a_big_ack_scan_is_not_a_flood(tmp_path):
    alerts = types(run_packets(tmp_path, ack_scan(4, 1500, gap=0.001))[0])
    assert alerts["port_scan"][0]["src_ip"] == ADDRS[4][0]
    assert all(a["src_ip"] == ADDRS[4][0] for a in alerts.get("traffic_burst", [])), alerts["traffic_burst"]


@pytest.mark.parametrize("v", [4, 6])
def test_fragmented_scan_counts_like_a_plain_one(tmp_path, v):
    """nmap -f: each SYN split so the first fragment carries the ports but not the flags."""
    from scapy.layers.inet import fragment
    from scapy.layers.inet6 import IPv6ExtHdrFragment, fragment6
    pkts = []
    for i in range(20):
        probe = TCP(sport=40000, dport=100 + i, flags="S")
        frags = (fragment(IP(src=ADDRS[4][0], dst=host(4, 0)) / probe, fragsize=8) if v == 4 else
                 fragment6(IPv6(src=ADDRS[6][0], dst=host(6, 0)) / IPv6ExtHdrFragment() / probe, 56))
        pkts += [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / f) for f in frags]
    assert len(pkts) > 20
    alerts = types(run_packets(tmp_path, pkts)[0])
    assert set(alerts) == {"port_scan"} and alerts["port_scan"][0]["evidence"]["distinct_ports"] == 20


def test_slow_scan_uses_the_long_window(tmp_path):
    alerts = types(run_packets(tmp_path, scan(4, 30, gap=1.0))[0])["port_scan"]
    assert alerts[0]["evidence"]["mode"].startswith("long window") and alerts[0]["evidence"]["distinct_ports"] == 25
    assert "port_scan" not in types(run_packets(tmp_path, scan(4, 24, gap=1.0))[0])


def test_replies_from_a_server_are_not_a_scan(tmp_path):
    # a DNS server answering 100 client ports, a web server SYN-ACKing 100 connections
    pkts = [(T0 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=53, dport=30000 + i)) for i in range(100)]
    pkts += [(T0 + 2 + i * 0.01, Ether(dst="02:00:00:00:00:02") / IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=80, dport=30000 + i, flags="SA"))
             for i in range(100)]
    assert run_packets(tmp_path, pkts)[0] == []


def test_decoy_scan_one_alert_per_source(tmp_path):
    pkts = []
    for d, src in enumerate(["10.1.0.66", "10.9.9.9", "10.8.8.8"]):
        pkts += scan(4, 25, src=src, t0=T0 + d * 0.001)
    fired = types(run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))[0])["port_scan"]
    assert sorted(a["src_ip"] for a in fired) == ["10.1.0.66", "10.8.8.8", "10.9.9.9"]


def decoy_scan(v: int, real: str, decoys: list[str], ports: range, answer_decoys: bool = False):
    """nmap -D: each port probed from every decoy and the real address, back to back; the target
    answers the real scanner (RST+ACK, SYN-ACK from port 80), the decoys only if `answer_decoys`."""
    target, pkts = host(v, 0), []
    for i, port in enumerate(ports):
        for k, src in enumerate([*decoys, real]):
            t = T0 + i * 0.005 + k * 0.0002
            pkts.append(syn(v, src, target, 40000 + k, port, t))
            if src == real or answer_decoys:
                flags = "SA" if port == 80 else "RA"
                pkts.append((t + 0.0001, Ether(dst="02:00:00:00:00:02") / ip(v, target, src)
                             / TCP(sport=port, dport=40000 + k, flags=flags)))
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_decoys_the_target_never_answered_are_the_real_scanners(tmp_path, v):
    """Recorded nmap -sS -D with 4 decoys on a LAN: the target answered only the real scanner (it
    cannot resolve the forged addresses), and each decoy was a port scan (and a suspicious_port for
    port 23) of its own. They are named in the real scanner's alert; its watched-port probes too."""
    real, decoys = ADDRS[v][0], [many(v, k) for k in range(4)]
    alerts, _ = run_packets(tmp_path, decoy_scan(v, real, decoys, range(1, 41)))
    assert {a.get("src_ip") for a in alerts if a["type"] != "syn_flood"} == {real}
    scan_alert, = types(alerts)["port_scan"]
    assert scan_alert["evidence"]["decoys"] == sorted(decoys) and scan_alert["evidence"]["distinct_ports"] == 40
    assert scan_alert["evidence"]["watched_ports_touched"] == [23] and scan_alert["evidence"]["watched_port_probes"] == 5
    # answered decoys (live hosts whose answers the capture holds) cannot be told apart: one alert each
    fired = types(run_packets(tmp_path, decoy_scan(v, real, decoys, range(1, 41), answer_decoys=True))[0])["port_scan"]
    assert sorted(a["src_ip"] for a in fired) == sorted([real, *decoys]) and not any("decoys" in a["evidence"] for a in fired)


def test_an_unanswered_scanner_of_other_ports_is_no_decoy(tmp_path):
    """An unanswered source is a decoy only of a scanner of the same ports: one probing other ports
    of the same answering host (a firewall drops it) is a scanner of its own."""
    pkts = decoy_scan(4, "10.1.0.66", [], range(1, 41)) + [syn(4, "10.1.0.77", host(4, 0), 40000, 2000 + p, T0 + p * 0.005)
                                                            for p in range(40)]
    fired = types(run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))[0])["port_scan"]
    assert sorted(a["src_ip"] for a in fired) == ["10.1.0.66", "10.1.0.77"]


def test_a_scan_of_several_hosts_at_once_names_them_all(tmp_path):
    """nmap --top-ports 100 v1 v2 v3 (recorded): the three hosts' scans cross the threshold in one
    slice and were one alert naming one of them (the others suppressed repeats). The alert lists
    every target with its ports; a scan of one host has no such list."""
    targets = [host(4, k) for k in range(3)]
    pkts = sorted((syn(4, ADDRS[4][0], targets[k], 40000, 1000 + p, T0 + p * 0.003 + k * 0.001)
                   for k in range(3) for p in range(25 + 5 * k)), key=lambda p: p[0])
    fired = types(run_packets(tmp_path, pkts)[0])["port_scan"]
    assert len(fired) == 1 and fired[0]["src_ip"] == ADDRS[4][0] and fired[0]["dest_ip"] == targets[2]
    assert [(t["target"], t["distinct_ports"]) for t in fired[0]["evidence"]["targets"]] == \
        [(targets[2], 35), (targets[1], 30), (targets[0], 25)]
    assert "targets" not in types(run_packets(tmp_path, scan(4, 25))[0])["port_scan"][0]["evidence"]


def test_one_packet_random_sources_never_get_state(tmp_path):
    flood = [syn(4, many(4, i), "10.1.0.1", 1000 + i % 50, 80, T0 + i * 0.0005) for i in range(2000)]
    alerts, engine = run_packets(tmp_path, flood + scan(4, 25, t0=T0 + 1.1))
    st = engine.summary()["detector_state"]
    assert st["port_scan_groups"] == 1 and st["port_scan_seen_once"] == 2000
    assert [a["evidence"]["distinct_ports"] for a in alerts if a["type"] == "port_scan"] == [25]  # none lost


def test_port_scan_state_bounded_under_source_flood(tmp_path):
    cap = 64
    # every forged source probes twice, so each passes the doorkeeper and takes state
    flood = [syn(4, many(4, i // 2), "10.1.0.1", 1000 + i % 50, 80 + i % 7, T0 + i * 0.00025) for i in range(20 * cap)]
    pkts = sorted(flood + scan(4, 30, gap=0.01, t0=T0 + 0.1), key=lambda p: p[0])
    alerts, engine = run_packets(tmp_path, pkts, {"detect.port_scan.max_sources": cap, "detect.port_scan.max_probes": 16 * cap})
    assert [a["src_ip"] for a in alerts if a["type"] == "port_scan"] == ["10.1.0.66"]
    st = engine.summary()["detector_state"]
    assert st["port_scan_groups"] <= cap and st["port_scan_items"] <= 16 * cap
    assert st["port_scan_evicted"] > 0


def test_disabled_detector_is_silent(tmp_path):
    assert run_packets(tmp_path, scan(4, 30), {"detect.port_scan.enabled": False})[0] == []


@pytest.mark.parametrize("ports", [14, 9])
def test_near_miss_in_the_stats_record_of_read(tmp_path, ports):
    """A source probing 14 of 20 ports is a near miss in the final stats event `read` writes to
    its log (what the dashboard's panel and /metrics read); 9 of 20 is below half: none."""
    log = tmp_path / "a.json"
    r = cli("read", write_pcap(str(tmp_path / "n.pcap"), scan(4, ports)), "--logfile", str(log), "--quiet")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [x["event_type"] for x in records] == ["stats"]  # no alert: below the threshold
    near = records[0]["stats"]["near_misses"]
    if ports == 9:
        assert near == []
        return
    assert near == [{"detector": "port_scan", "src_ip": "10.1.0.66", "dest_ip": "10.1.0.1", "figure": 14,
                     "threshold": 20, "fraction": 0.7, "unit": "ports", "window": 10.0,
                     "text": "10.1.0.66: 14 of 20 ports in 10 s"}]


def test_near_misses_leave_out_alerted_keys_and_keep_the_five_highest(tmp_path):
    """Seven sources at 11..17 of 20 ports and one at 20 (alerted): the five highest below 1."""
    pkts = [p for i in range(7) for p in scan(4, 11 + i, src=f"10.1.0.{100 + i}")]
    pkts += scan(4, 20, src="10.1.0.99")
    alerts, engine = run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))
    assert [a["src_ip"] for a in alerts] == ["10.1.0.99"]
    near = engine.near_misses()
    assert [(m["src_ip"], m["figure"], m["fraction"]) for m in near] == [
        ("10.1.0.106", 17, 0.85), ("10.1.0.105", 16, 0.8), ("10.1.0.104", 15, 0.75), ("10.1.0.103", 14, 0.7),
        ("10.1.0.102", 13, 0.65)]


def test_ports_that_carried_data_are_a_clients_not_a_scans(tmp_path):
    """An FTP client in passive mode opens each file's data connection to a new high port of the
    server: 30 ports in 6 s, every one carrying a file. Those ports were used, not probed; a SYN
    scan of the same 30 ports (no data) is still a scan."""
    e, c, s = Ether(dst="02:00:00:00:00:02"), "10.1.0.21", "10.1.0.1"
    pkts, probes_only = [], []
    for i in range(30):
        t, sp, dp = T0 + i * 0.2, 45000 + i, 50000 + 7 * i
        syn_, synack = (t, e / IP(src=c, dst=s) / TCP(sport=sp, dport=dp, flags="S")), \
            (t + 0.001, e / IP(src=s, dst=c) / TCP(sport=dp, dport=sp, flags="SA"))
        probes_only += [syn_, synack, (t + 0.002, e / IP(src=c, dst=s) / TCP(sport=sp, dport=dp, flags="R"))]
        pkts += [syn_, synack, (t + 0.002, e / IP(src=c, dst=s) / TCP(sport=sp, dport=dp, flags="A")),
                 (t + 0.003, e / IP(src=s, dst=c) / TCP(sport=dp, dport=sp, flags="PA") / (b"file data " * 50)),
                 (t + 0.004, e / IP(src=c, dst=s) / TCP(sport=sp, dport=dp, flags="A")),
                 (t + 0.005, e / IP(src=s, dst=c) / TCP(sport=dp, dport=sp, flags="FA")),
                 (t + 0.006, e / IP(src=c, dst=s) / TCP(sport=sp, dport=dp, flags="FA"))]
    assert "port_scan" not in types(run_packets(tmp_path, pkts)[0])
    fired = types(run_packets(tmp_path, probes_only)[0])["port_scan"]
    assert fired[0]["src_ip"] == c and fired[0]["evidence"]["conversations"] == 0


def traceroute(v: int, ttl_of) -> list:
    """traceroute's UDP probes, three a hop, each to the next port from 33434, with the TTL
    (hop limit) `ttl_of(hop)`; the target answers each with a port unreachable."""
    from scapy.layers.inet import ICMP
    from scapy.layers.inet6 import ICMPv6DestUnreach
    src, dst = ADDRS[v][0], host(v, 0)
    pkts = []
    for k in range(30):
        hop = 1 + k // 3
        t = T0 + k * 0.01
        probe = (IP(src=src, dst=dst, ttl=ttl_of(hop)) if v == 4 else IPv6(src=src, dst=dst, hlim=ttl_of(hop))) / UDP(sport=40000 + k, dport=33434 + k)
        unreach = (IP(src=dst, dst=src) / ICMP(type=3, code=3) if v == 4 else IPv6(src=dst, dst=src) / ICMPv6DestUnreach(code=4))
        pkts += [(t, Ether(dst="02:00:00:00:00:02") / probe), (t + 0.0003, Ether(dst="02:00:00:00:00:02") / unreach / probe)]
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_traceroutes_path_probes_are_not_a_scan_of_the_host_they_end_at(tmp_path, v):
    """30 UDP probes to 30 ports with TTLs 1..10 (a directly connected target answers every one
    port unreachable): path discovery. The same probes sent to arrive (TTL 64) are a UDP scan."""
    assert "port_scan" not in types(run_packets(tmp_path, traceroute(v, lambda hop: hop))[0])
    assert "port_scan" not in types(run_packets(tmp_path, traceroute(v, lambda hop: 9))[0])
    fired = types(run_packets(tmp_path, traceroute(v, lambda hop: 10))[0])["port_scan"]
    assert len(fired) == 1 and fired[0]["evidence"]["distinct_ports"] == 30
    assert "port_scan" in types(run_packets(tmp_path, traceroute(v, lambda hop: 64))[0])
