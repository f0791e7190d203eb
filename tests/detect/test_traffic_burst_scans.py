"""traffic_burst and fast UDP port scans: a scanner's probes to port after port are port_scan's,
a flood tool's datagrams to port after port are a flood as well.

tests/heldout/ha29_udp_flood_closed_ports_head.pcap.xz: the first 1,500 packets (0.16 s) of the
held-out attack capture ha29, `hping3 --udp -p ++2000 -d 64 --faster` against a host with no
service: every datagram the same 64 bytes, from the next source port to the next closed port, and
a few rate-limited port unreachables back. tests/captures/udp_scan_*.pcap.xz: real fast UDP scans
of a host with no service (tests/captures/record_udp_scans.sh): nmap -sU --min-rate 5000, the
same with --data-length 40 (one padded datagram to every port), masscan -pU at 5,000/s; each
2,000 packets within 0.5 s, over traffic_burst's threshold."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest
from conftest import decode_file, run_file
from crafted import types
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import rdpcap

from wirewatch.craft import write_pcap
from wirewatch.detect.traffic_burst import NAMES

TESTS = Path(__file__).resolve().parent.parent
HA29 = TESTS / "heldout" / "ha29_udp_flood_closed_ports_head.pcap.xz"
SCANS = ("udp_scan_nmap_fast", "udp_scan_nmap_data_length", "udp_scan_masscan")


def test_a_flood_of_one_datagram_from_a_new_port_to_each_new_port_is_a_flood_and_a_scan():
    alerts = types(run_file(str(HA29))[0])
    assert set(alerts) == {"traffic_burst", "port_scan"}  # before: port_scan only
    [burst] = alerts["traffic_burst"]
    assert (burst["src_ip"], burst["dest_ip"], burst["proto"]) == ("192.168.77.200", "192.168.77.8", "UDP")
    assert burst["evidence"]["kind"] == NAMES["udp"] and burst["evidence"]["packets"] >= 1000
    assert [a["src_ip"] for a in alerts["port_scan"]] == ["192.168.77.200"]


@pytest.mark.parametrize("name", SCANS)
def test_a_fast_udp_scan_from_one_socket_is_a_scan_not_a_flood(name):
    path = str(TESTS / "captures" / f"{name}.pcap.xz")
    b = decode_file(path)
    probes = (b.proto == 17) & (b.dport != 0)
    assert int(probes.sum()) >= 1900 and len(set(b.sport[probes].tolist())) == 1  # one source port
    alerts = types(run_file(path)[0])
    assert set(alerts) == {"port_scan"}, alerts
    assert {a["src_ip"] for a in alerts["port_scan"]} == {"10.78.1.1"}


def rewritten(tmp_path: Path, name: str, change) -> str:
    """ha29's head with each of the flooder's datagrams changed by `change` (checksums redone)."""
    raw = tmp_path / "ha29.pcap"
    raw.write_bytes(lzma.decompress(HA29.read_bytes()))
    out = []
    for p in rdpcap(str(raw)):
        if p.haslayer(UDP) and p[IP].src == "192.168.77.200":
            change(p)
            del p[IP].len, p[IP].chksum, p[UDP].len, p[UDP].chksum
        out.append((float(p.time), p))
    return write_pcap(str(tmp_path / f"{name}.pcap"), out)


def one_socket(p) -> None:
    p[UDP].sport = 40000  # as a scanner sends: from the one port it reads its answers on


def bare(p) -> None:
    p[UDP].remove_payload()  # headers only, as traceroute-style probes that move their port on


def sized(p) -> None:
    p[UDP].payload = Raw(b"X" * (p[UDP].dport % 97))  # each port's own question: sizes vary


@pytest.mark.parametrize("change", [one_socket, bare, sized])
def test_the_same_datagrams_as_a_scanners_probes_are_no_flood(tmp_path, change):
    alerts = types(run_file(rewritten(tmp_path, change.__name__, change))[0])
    assert set(alerts) == {"port_scan"}, alerts
