"""suspicious_port: a session to a watched port already established when the capture
began (no SYN in it) is reported once, naming the side that talks to the port (issue 10)."""

from __future__ import annotations

from conftest import run_packets
from scapy.layers.inet import IP, TCP

from wirewatch.craft import BASE_TS, eth, tcp_handshake

T0 = BASE_TS
CLIENT, SHELL = "10.6.0.66", "10.6.0.22"


def midstream(port: int, exchanges: int = 20, server_only: bool = False) -> list:
    """An interactive session caught in the middle: commands in, output back, no SYN."""
    pkts = []
    for i in range(exchanges):
        t = T0 + i * 0.5
        if not server_only:
            pkts.append((t, eth(IP(src=CLIENT, dst=SHELL) / TCP(sport=51515, dport=port, flags="PA", seq=100 + i * 3) / b"ls\n")))
        pkts.append((t + 0.01, eth(IP(src=SHELL, dst=CLIENT) / TCP(sport=port, dport=51515, flags="PA", seq=900 + i * 40) / (b"o" * 40))))
    return pkts


def flagged(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["type"] == "suspicious_port"]


def test_midstream_session_to_a_watched_port(tmp_path):
    assert flagged(run_packets(tmp_path, midstream(4445))[0]) == []  # one port off the watch list
    fired = flagged(run_packets(tmp_path, midstream(4444))[0])
    assert len(fired) == 1 and fired[0]["src_ip"] == CLIENT and fired[0]["dest_ip"] == SHELL
    assert fired[0]["dest_port"] == 4444 and fired[0]["evidence"]["midstream"] is True


def test_only_the_server_side_captured_still_names_the_client(tmp_path):
    fired = flagged(run_packets(tmp_path, midstream(31337, server_only=True))[0])
    assert len(fired) == 1 and fired[0]["src_ip"] == CLIENT and fired[0]["dest_port"] == 31337


def test_a_client_port_that_happens_to_be_watched_is_not_a_session_to_it(tmp_path):
    # an ordinary HTTPS download whose client picked ephemeral port 54321 (on the watch list)
    pkts = [(T0 + i * 0.01, eth(IP(src="10.6.0.10", dst=CLIENT) / TCP(sport=443, dport=54321, flags="PA") / (b"d" * 500)))
            for i in range(50)]
    assert flagged(run_packets(tmp_path, pkts)[0]) == []


def test_a_session_whose_syn_was_seen_is_reported_once(tmp_path):
    pkts = tcp_handshake(T0, CLIENT, SHELL, 40001, 4444, b"id\n") + [
        (T0 + 1 + i * 0.5, eth(IP(src=CLIENT, dst=SHELL) / TCP(sport=40001, dport=4444, flags="PA") / b"ls\n")) for i in range(5)]
    fired = flagged(run_packets(tmp_path, pkts)[0])
    assert len(fired) == 1 and "midstream" not in fired[0]["evidence"]
