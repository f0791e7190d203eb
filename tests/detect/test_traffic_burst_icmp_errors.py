"""traffic_burst and ICMP errors: a flood of forged errors (BlackNurse: port unreachables quoting
a packet the victim never sent, or nothing) is a burst; real errors, which quote the receiver's
own packets (a UDP scan's port unreachables, traceroute's time exceeded), answer them and never
are. The captures were recorded in namespaces by tests/captures/record_icmp_errors.sh (hping3,
nping, nmap, traceroute); the IPv6 and truncated cases are Scapy-crafted."""

from __future__ import annotations

from pathlib import Path

from capfiles import pcap
from conftest import run_file, run_packets
from crafted import T0, types
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether

from wirewatch.detect.traffic_burst import NAMES, QUOTE_NOTE

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
FORGED = NAMES["icmp_error"]


def test_blacknurse_from_one_source_is_a_burst_of_forged_errors():
    alerts = types(run_file(str(CAPTURES / "blacknurse_hping3.pcap.xz"))[0])
    assert list(alerts) == ["traffic_burst"]  # hping3 --icmp -C 3 -K 3, 3,000 errors quoting 1.2.3.4 -> 5.6.7.8
    [a] = alerts["traffic_burst"]
    assert (a["src_ip"], a["dest_ip"], a["proto"]) == ("10.77.1.1", "10.77.2.2", "ICMP")
    ev = a["evidence"]
    assert ev["kind"] == FORGED and ev["packets"] == 3000 and ev["bytes"] == 3000 * 70
    assert ev["quote_note"] == QUOTE_NOTE and ev["replies"] is None and ev["peak_pps"] > 1000


def test_blacknurse_quoting_nothing_is_a_burst_too():
    [a] = types(run_file(str(CAPTURES / "blacknurse_nping.pcap.xz"))[0])["traffic_burst"]  # nping: no quote at all
    assert (a["src_ip"], a["dest_ip"], a["evidence"]["kind"], a["evidence"]["packets"]) == \
        ("10.77.1.1", "10.77.2.2", FORGED, 2000)


def test_blacknurse_from_random_sources_names_the_victim_and_accuses_nobody():
    alerts = types(run_file(str(CAPTURES / "blacknurse_randsrc.pcap.xz"))[0])
    assert list(alerts) == ["traffic_burst"]
    [a] = alerts["traffic_burst"]
    assert a.get("src_ip") is None and a["dest_ip"] == "10.77.2.2" and a["evidence"]["kind"] == FORGED
    assert a["evidence"]["packets"] == 3000 and a["evidence"]["distinct_sources"] > 2000


def test_a_udp_scans_unreachables_and_traceroutes_time_exceeded_are_answers_not_a_flood():
    # 3,026 port unreachables (nmap -sU, the target's ICMP rate limit off) and 3,003 time exceeded
    # (traceroute, hping3 --ttl 1), each quoting a packet the prober sent, within 1.5 s
    alerts = types(run_file(str(CAPTURES / "genuine_errors.pcap.xz"))[0])
    assert "traffic_burst" not in alerts
    [scan] = alerts["port_scan"]
    assert scan["src_ip"] == "10.77.1.1" and scan["evidence"]["answers"]["unreachable"] == 3026


def errors6(n: int, quoted_src: str, victim: str = "fd00::2"):
    """n ICMPv6 port unreachables from fd00::fe to `victim`, quoting a UDP datagram from `quoted_src`."""
    return [(T0 + i * 0.0005, Ether(dst="02:00:00:00:00:02") / IPv6(src="fd00::fe", dst=victim) /
             ICMPv6DestUnreach(code=4) / IPv6(src=quoted_src, dst="2001:db8::9") / UDP(sport=40000 + i % 500, dport=53))
            for i in range(n)]


def test_ipv6_errors_quoting_another_source_are_forged_and_the_victims_own_are_not(tmp_path):
    [a] = types(run_packets(tmp_path, errors6(1500, "2001:db8::1"))[0])["traffic_burst"]
    assert (a["src_ip"], a["dest_ip"], a["evidence"]["kind"], a["evidence"]["packets"]) == \
        ("fd00::fe", "fd00::2", FORGED, 1500)
    assert "traffic_burst" not in types(run_packets(tmp_path, errors6(1500, "fd00::2"))[0])
    assert "traffic_burst" not in types(run_packets(tmp_path, errors6(999, "2001:db8::1"))[0])  # below the threshold


def test_errors_whose_quote_the_capture_cut_are_unknown_not_forged(tmp_path):
    # the quoted header cut at 20 of its 40 bytes (a short snaplen): who sent it is unknown
    frames = [(int(t), int(round((t % 1) * 1e6)), bytes(p)[:14 + 40 + 8 + 20]) for t, p in errors6(1500, "2001:db8::1")]
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap(frames))
    assert "traffic_burst" not in types(run_file(str(path))[0])
