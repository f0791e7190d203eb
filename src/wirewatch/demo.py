"""Build the sample capture that `make run` analyses: benign traffic and one port scan.

Usage: python -m wirewatch.demo OUTPUT.pcap
"""

from __future__ import annotations

import os
import sys

from .craft import BASE_TS, dns_query, ping, syn_scan, tcp_handshake, write_pcap

CLIENT, SERVER, SCANNER = "192.168.1.20", "192.168.1.1", "192.168.1.15"


def sample_packets() -> list:
    pkts = []
    for i in range(30):  # a client browsing and resolving names
        t = BASE_TS + i * 0.5
        pkts += tcp_handshake(t, CLIENT, SERVER, 50000 + i, 80, b"GET / HTTP/1.0\r\n\r\n")
        pkts += dns_query(t + 0.2, CLIENT, SERVER, 33000 + i)
        pkts += ping(t + 0.3, CLIENT, SERVER, i)
    pkts += syn_scan(BASE_TS + 5, SCANNER, SERVER, range(1, 101), open_ports=(22, 53, 80))
    return sorted(pkts, key=lambda p: p[0])


def main(argv: list[str]) -> int:
    out = argv[1] if len(argv) > 1 else "var/sample.pcap"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_pcap(out, sample_packets())
    print(f"wrote {out}: sample capture (benign HTTP/DNS/ping from {CLIENT}, a SYN scan from {SCANNER})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
