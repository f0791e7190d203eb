"""port_scan of SCTP ports (nmap -sY): SCTP's common header carries a source and a destination
port like UDP's, so INITs to many ports of one host are a port scan; the ABORTs the host
answers from its service ports to the scanner's ports are not."""

from __future__ import annotations

import pytest
from conftest import run_packets, write_pcap
from crafted import ADDRS, T0, host, ip, types
from scapy.layers.l2 import Ether
from scapy.layers.sctp import SCTP, SCTPChunkAbort, SCTPChunkInit

from wirewatch.capture.pcapfile import read_batches
from wirewatch.decode import decode, decode_numpy


def sctp_init_scan(v: int, ports: int, gap: float = 0.002) -> list:
    """INITs to ports 1..`ports`, each from a new source port (nmap's raw SCTP probes), each
    answered by an ABORT, as a host with SCTP and nothing listening answers."""
    scanner, target = ADDRS[v][0], host(v, 0)
    pkts = []
    for p in range(1, ports + 1):
        t = T0 + p * gap
        pkts.append((t, Ether(dst="02:00:00:00:00:02") / ip(v, scanner, target)
                     / SCTP(sport=40000 + p, dport=p, tag=0) / SCTPChunkInit(init_tag=p, a_rwnd=32768)))
        pkts.append((t + gap / 2, Ether(dst="02:00:00:00:00:01") / ip(v, target, scanner)
                     / SCTP(sport=p, dport=40000 + p, tag=p) / SCTPChunkAbort()))
    return pkts


@pytest.mark.parametrize("v", [4, 6])
def test_sctp_init_scan_is_a_port_scan(tmp_path, v):
    alerts = types(run_packets(tmp_path, sctp_init_scan(v, 30))[0])
    fired = alerts["port_scan"]
    assert [a["src_ip"] for a in fired] == [ADDRS[v][0]]  # the scanner, never the host's ABORTs
    assert fired[0]["proto"] == "SCTP" and fired[0]["evidence"]["distinct_ports"] == 30


def test_sctp_below_the_threshold_is_silent(tmp_path):
    assert "port_scan" not in types(run_packets(tmp_path, sctp_init_scan(4, 19))[0])


def test_both_decoders_read_sctp_ports(tmp_path):
    path = write_pcap(str(tmp_path / "s.pcap"), sctp_init_scan(4, 3))
    raw = next(iter(read_batches(path, 4096)))
    for b in (decode(raw.buf, raw.meta, raw.linktype), decode_numpy(raw.buf, raw.meta, raw.linktype)):
        assert b.has_ports.tolist() == [True] * 6
        assert b.dport.tolist() == [1, 40001, 2, 40002, 3, 40003]
