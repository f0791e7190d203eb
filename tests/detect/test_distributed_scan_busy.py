"""distributed_scan amid a busy server's clients (issue 10): sources that use a port are
not co-scanners, and ports they use do not count as probed."""

from __future__ import annotations

from conftest import run_packets
from scapy.layers.inet import IP, TCP

from wirewatch.craft import BASE_TS, eth, tcp_handshake

T0 = BASE_TS
SERVER = "10.3.0.10"
CLIENTS = [f"10.3.0.{101 + i}" for i in range(4)]
SCANNERS = [f"10.3.0.{71 + i}" for i in range(3)]


def scanned(ports_each: list[int]) -> list:
    """Each scanner SYNs its own slice of ports (answered by RST), 2 s apart."""
    pkts, port = [], 1000
    for k, (src, n) in enumerate(zip(SCANNERS, ports_each)):
        for i in range(n):
            t = T0 + 2 * k + i * 0.01
            pkts.append((t, eth(IP(src=src, dst=SERVER) / TCP(sport=45000, dport=port, flags="S"))))
            pkts.append((t + 0.001, eth(IP(src=SERVER, dst=src) / TCP(sport=port, dport=45000, flags="RA"))))
            port += 1
    return pkts


def web_clients() -> list:
    pkts = []
    for i in range(120):
        port = 80 if i % 3 else 443
        pkts += tcp_handshake(T0 + i * 0.05, CLIENTS[i % len(CLIENTS)], SERVER, 20000 + i, port, b"GET / HTTP/1.1\r\n\r\n")
    return pkts


def dscan(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["type"] == "distributed_scan"]


def test_clients_are_not_members_and_their_ports_do_not_count(tmp_path):
    quiet = sorted(scanned([10, 10, 9]) + web_clients(), key=lambda p: p[0])  # 29 probed ports + 80, 443 used
    assert dscan(run_packets(tmp_path, quiet)[0]) == []
    loud = sorted(scanned([10, 10, 10]) + web_clients(), key=lambda p: p[0])
    fired = dscan(run_packets(tmp_path, loud)[0])
    assert len(fired) == 1
    ev = fired[0]["evidence"]
    assert {m["src_ip"] for m in ev["members"]} == set(SCANNERS) and ev["distinct_ports"] == 30
    assert fired[0]["dest_ip"] == SERVER


def test_monitoring_checks_of_banner_services_are_not_a_scan(tmp_path):
    """`nc -z`: handshake, FIN at once, the server ACKs it and sends its banner, the checker's
    closed socket answers with a bare RST. Many checks, many ephemeral ports: not a scan."""
    mon, servers = "10.3.0.60", ["10.3.0.22", "10.3.0.23"]
    pkts = []
    for i in range(40):
        for k, srv in enumerate(servers):
            t, cp = T0 + i * 0.6 + k * 0.2, 40000 + 2 * i + k
            c2s, s2c = IP(src=mon, dst=srv), IP(src=srv, dst=mon)
            pkts += [(t, eth(c2s / TCP(sport=cp, dport=22, flags="S", seq=100))),
                     (t + 0.001, eth(s2c / TCP(sport=22, dport=cp, flags="SA", seq=900, ack=101))),
                     (t + 0.002, eth(c2s / TCP(sport=cp, dport=22, flags="A", seq=101, ack=901))),
                     (t + 0.05, eth(c2s / TCP(sport=cp, dport=22, flags="FA", seq=101, ack=901))),
                     (t + 0.051, eth(s2c / TCP(sport=22, dport=cp, flags="A", seq=901, ack=102))),
                     (t + 0.06, eth(s2c / TCP(sport=22, dport=cp, flags="PA", seq=901, ack=102) / b"SSH-2.0-OpenSSH_9.2\r\n")),
                     (t + 0.0601, eth(c2s / TCP(sport=cp, dport=22, flags="R", seq=102)))]
    alerts, _ = run_packets(tmp_path, pkts)
    assert alerts == []
