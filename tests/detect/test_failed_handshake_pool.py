"""failed_handshake and a pool's client: a load balancer health-checking a pool connects to the
same port of every member each round; a member that is down refuses every round, as often as a
retrying client's one host. The rest of the pool, which completes, is what tells them apart.

tests/heldout/hb31_lb_members_down_8_rounds.pcap.xz: the TCP packets of the first 8 rounds (18 s)
of the held-out benign capture hb31: 172.31.60.20 checks port 80 of 20 members every ~2.4 s; 16
complete a request, 4 (172.31.60.5, .35, .77, .78) have no web server and answer RST."""

from __future__ import annotations

import lzma
from pathlib import Path

from conftest import run_file, run_packets
from crafted import T0, syn, types
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from wirewatch.craft import tcp_handshake, write_pcap

HB31 = Path(__file__).resolve().parent.parent / "heldout" / "hb31_lb_members_down_8_rounds.pcap.xz"
LB = "172.31.60.20"
DOWN = {"172.31.60.5", "172.31.60.35", "172.31.60.77", "172.31.60.78"}


def test_a_load_balancer_finding_members_down_is_not_failing():
    alerts, engine = run_file(str(HB31))
    assert alerts + engine.alerts.finish() == []  # before: failed_handshake LB -> each down member


def test_the_same_checks_of_the_down_members_alone_are_failures(tmp_path):
    raw = tmp_path / "hb31.pcap"
    raw.write_bytes(lzma.decompress(HB31.read_bytes()))
    down = [(float(p.time), p) for p in rdpcap(str(raw)) if {p[IP].src, p[IP].dst} & DOWN]
    alerts = types(run_file(write_pcap(str(tmp_path / "down.pcap"), down))[0])
    assert set(alerts) == {"failed_handshake"}
    found = alerts["failed_handshake"]
    assert {a["src_ip"] for a in found} == {LB} and {a["dest_ip"] for a in found} == DOWN
    assert [(a["evidence"]["failed_handshakes"], a["evidence"]["ports"]) for a in found] == [(8, [80])] * 4


def refused(src: str, dst: str, port: int, t: float, sport: int) -> list:
    return [syn(4, src, dst, sport, port, t),
            (t + 0.001, Ether(dst="02:00:00:00:00:02") / IP(src=dst, dst=src) / TCP(sport=port, dport=sport, flags="RA"))]


def test_the_failing_hosts_own_completions_and_other_ports_do_not_make_a_pool(tmp_path):
    client, server, others = "10.1.0.66", "10.1.0.1", ["10.1.0.2", "10.1.0.3", "10.1.0.4"]
    pkts = []
    for i in range(8):
        t = T0 + i * 0.5
        pkts += refused(client, server, 8081, t, 30000 + i)
        pkts += tcp_handshake(t + 0.1, client, server, 31000 + i, 8081)  # a flaky server takes some
        for j, o in enumerate(others):  # and the client uses another port of other hosts
            pkts += tcp_handshake(t + 0.2 + j * 0.01, client, o, 32000 + 10 * i + j, 443)
    fired = types(run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))[0])["failed_handshake"]
    assert [(a["src_ip"], a["dest_ip"]) for a in fired] == [(client, server)]


def test_a_pool_mostly_down_still_alerts(tmp_path):
    # two of three members refuse every round: the pool's client sees more down than up
    lb, members = "10.1.0.20", ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
    pkts = []
    for i in range(8):
        t = T0 + i * 2.0
        pkts += refused(lb, members[0], 80, t, 30000 + i)
        pkts += refused(lb, members[1], 80, t + 0.01, 31000 + i)
        pkts += tcp_handshake(t + 0.02, lb, members[2], 32000 + i, 80)
    fired = types(run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))[0])["failed_handshake"]
    assert sorted(a["dest_ip"] for a in fired) == members[:2]


def test_a_scanned_hosts_failures_take_no_room_in_the_pool(tmp_path):
    """A port scan refused on 300 ports: its (source, host) pair hits more than max_ports ports, so
    it can never alert and its failures take no pool group (one per port before); a retrying
    client's pair, on one port, still has its pool group."""
    scanner, client, server = "10.1.0.99", "10.1.0.66", "10.1.0.1"
    pkts = []
    for i in range(300):
        pkts += refused(scanner, server, 1000 + i, T0 + i * 0.002, 40000)
    for i in range(8):
        pkts += refused(client, server, 8081, T0 + 1 + i * 0.5, 30000 + i)
    alerts, engine = run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))
    fired = types(alerts)["failed_handshake"]
    assert [(a["src_ip"], a["dest_ip"]) for a in fired] == [(client, server)]
    state = engine.summary()["detector_state"]
    assert state["failed_handshake_items"] >= 300  # the scan's failures are counted ...
    assert 1 <= state["failed_handshake_pool_groups"] <= 1 + 5  # ... but not pooled: the client's, and the
    # scan's first ports (before its pair passed max_ports)
