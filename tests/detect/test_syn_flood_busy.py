"""syn_flood under legitimate load (issue 10): what counts is the SYNs that did not
complete, per victim host and per victim host and port."""

from __future__ import annotations

import random

from conftest import run_packets
from scapy.layers.inet import IP, TCP

from wirewatch.craft import BASE_TS, eth

T0 = BASE_TS
SERVER = "10.4.0.10"


def handshakes(n: int, port: int, span: float = 8.0, one_way: bool = False) -> list:
    """n complete handshakes from three clients; one_way drops the server's side."""
    pkts = []
    for i in range(n):
        t, client, cp = T0 + i * span / n, f"10.4.0.{101 + i % 3}", 20000 + i
        pkts.append((t, eth(IP(src=client, dst=SERVER) / TCP(sport=cp, dport=port, flags="S", seq=7))))
        if not one_way:
            pkts.append((t + 0.0002, eth(IP(src=SERVER, dst=client) / TCP(sport=port, dport=cp, flags="SA", seq=9, ack=8))))
        pkts.append((t + 0.0004, eth(IP(src=client, dst=SERVER) / TCP(sport=cp, dport=port, flags="A", seq=8, ack=10))))
    return pkts


def spoofed(n: int, port: int = 80, span: float = 8.0, seed: int = 1) -> list:
    rnd = random.Random(seed)
    return [(T0 + 0.5 + i * span / n, eth(IP(src=f"{rnd.randint(11, 200)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
                                          dst=SERVER) / TCP(sport=rnd.randint(1024, 65535), dport=port, flags="S")))
            for i in range(n)]


def floods(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["type"] == "syn_flood"]


def run(tmp_path, pkts):
    return floods(run_packets(tmp_path, sorted(pkts, key=lambda p: p[0]))[0])


def test_random_source_flood_amid_as_much_legitimate_load_on_the_same_port(tmp_path):
    legit = handshakes(300, 80)  # 300 complete in the same 10 s: a 0.2 completion ratio would hide it
    assert run(tmp_path, legit + spoofed(399)) == []
    fired = run(tmp_path, legit + spoofed(400))
    assert len(fired) == 1 and fired[0]["dest_ip"] == SERVER and "src_ip" not in fired[0]
    ev = fired[0]["evidence"]
    assert ev["incomplete_syns"] == 400 and ev["completed_handshakes"] == 300 and ev["distinct_sources"] > 350


def test_flood_of_one_port_while_another_port_serves_many_clients(tmp_path):
    busy_443 = handshakes(600, 443)  # the host as a whole completes most of its handshakes
    assert run(tmp_path, busy_443 + spoofed(399)) == []
    fired = run(tmp_path, busy_443 + spoofed(400))
    assert len(fired) == 1 and fired[0]["dest_port"] == 80
    assert fired[0]["evidence"]["scope"] == "host and port" and fired[0]["evidence"]["completed_handshakes"] == 0


def test_busy_server_seen_one_way_is_not_flooded(tmp_path):
    """Only the clients' side captured (asymmetric routing): the ACK after the SYN shows the
    handshake completed even though the SYN-ACK is not in the capture."""
    alerts, _ = run_packets(tmp_path, handshakes(2000, 80, one_way=True))
    assert [a for a in alerts if a["type"] in ("syn_flood", "failed_handshake")] == []
