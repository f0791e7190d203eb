"""Correlation instead of noise (correlate.py, and the detectors' side of it): a scanner's
watched-port probes are in its scan alert, a completed connection still alerts, a one-source
SYN scan is no SYN flood, and FIN/UDP scans are no traffic bursts."""

from __future__ import annotations

from conftest import decode_file, run_packets
from crafted import T0, types
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror

from wirewatch.craft import eth, syn_scan, tcp_handshake
from wirewatch.decode import TCP_ACK, TCP_RST, TCP_SYN
from wirewatch.detect.suspicious_port import DEFAULT_PORTS

SCANNER, TARGET = "10.2.0.66", "10.2.0.11"


def watched_syns_in(path: str, src: str) -> set[int]:
    """Watched ports that `src` sent a bare SYN to, counted from the capture itself."""
    from wirewatch.addr import addr_strs
    b = decode_file(path)
    syn = ((b.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN) & (b.proto == 6)
    srcs = addr_strs(b.src_hi, b.src_lo)
    return {int(p) for p, s, ok in zip(b.dport.tolist(), srcs, syn.tolist()) if ok and s == src and p in DEFAULT_PORTS}


def test_a_scanners_watched_port_probes_are_in_its_scan_alert_not_alerts_of_their_own(tmp_path):
    ports = list(range(1, 1001)) + [1337, 4444, 6667, 31337]  # 16 watched ports among them
    pkts = syn_scan(T0, SCANNER, TARGET, ports, gap=0.0005)
    alerts, _ = run_packets(tmp_path, pkts)
    by = types(alerts)
    assert "suspicious_port" not in by
    (scan,) = by["port_scan"]
    path = str(tmp_path / "t.pcap")
    assert scan["evidence"]["watched_ports_touched"] == sorted(watched_syns_in(path, SCANNER))
    assert scan["evidence"]["watched_port_probes"] == len(watched_syns_in(path, SCANNER)) == 5


def test_a_probe_in_the_slice_before_the_scan_crosses_its_threshold_still_joins_it(tmp_path):
    # port 23 at 0.9 s, the rest of the scan in the next second (next time slice)
    pkts = syn_scan(T0 + 0.9, SCANNER, TARGET, [23]) + syn_scan(T0 + 1.1, SCANNER, TARGET, range(100, 160))
    alerts, _ = run_packets(tmp_path, pkts)
    by = types(alerts)
    assert "suspicious_port" not in by and by["port_scan"][0]["evidence"]["watched_ports_touched"] == [23]


def test_a_completed_connection_to_a_watched_port_alerts_even_from_a_scanner(tmp_path):
    pkts = syn_scan(T0, SCANNER, TARGET, range(1, 200)) + tcp_handshake(T0 + 2, SCANNER, TARGET, 41000, 4444, b"id\n")
    alerts, _ = run_packets(tmp_path, pkts)
    (shell,) = types(alerts)["suspicious_port"]
    assert shell["evidence"]["completed"] is True and shell.get("dest_port") == 4444 and shell.get("src_ip") == SCANNER
    assert "completed" in shell["message"]


def test_a_watched_port_probe_of_no_scanner_alerts_after_one_slice(tmp_path):
    pkts = syn_scan(T0, "10.2.0.5", TARGET, [23])
    alerts, _ = run_packets(tmp_path, pkts)
    (probe,) = types(alerts)["suspicious_port"]
    assert probe.get("src_ip") == "10.2.0.5" and probe["evidence"]["attempts"] == 1
    assert probe["evidence"]["first_seen"] == probe["evidence"]["last_seen"]


def test_suspicious_port_last_seen_is_the_last_attempt(tmp_path):
    pkts = [(T0 + i * 0.2, eth(IP(src="10.2.0.5", dst=TARGET) / TCP(sport=40000 + i, dport=23, flags="S")))
            for i in range(4)]
    alerts, _ = run_packets(tmp_path, pkts)
    (probe,) = types(alerts)["suspicious_port"]
    assert probe["evidence"]["attempts"] == 4
    assert probe["evidence"]["first_seen"].endswith("00:00:00.000000+0000")
    assert probe["evidence"]["last_seen"].endswith("00:00:00.600000+0000")


def test_a_one_source_syn_scan_at_flood_rate_is_no_syn_flood(tmp_path):
    pkts = syn_scan(T0, SCANNER, TARGET, range(1, 1001), gap=0.0005)  # 1,000 SYNs in 0.5 s
    alerts, _ = run_packets(tmp_path, pkts)
    by = types(alerts)
    assert "syn_flood" not in by and len(by["port_scan"]) == 1


def test_a_one_source_flood_of_one_port_is_still_a_syn_flood(tmp_path):
    pkts = [(T0 + i * 0.001, eth(IP(src=SCANNER, dst=TARGET) / TCP(sport=1024 + i, dport=80, flags="S")))
            for i in range(600)]
    alerts, _ = run_packets(tmp_path, pkts)
    (flood,) = types(alerts)["syn_flood"]
    assert flood["evidence"]["busiest_port"] == {"port": 80, "syns": 600} and flood["evidence"]["syns"] == 600
    assert flood["evidence"]["other_sources_syns"] + sum(s["syns"] for s in flood["evidence"]["top_sources"]) == 600


def test_fin_and_udp_scans_are_no_traffic_bursts(tmp_path):
    fin = [(T0 + i * 0.0001, eth(IP(src=SCANNER, dst=TARGET) / TCP(sport=40000, dport=1 + i, flags="F")))
           for i in range(1200)]
    fin += [(T0 + i * 0.0001 + 0.00005, eth(IP(src=TARGET, dst=SCANNER) / TCP(sport=1 + i, dport=40000, flags="RA")))
            for i in range(1200)]
    udp = [(T0 + 20 + i * 0.0001, eth(IP(src=SCANNER, dst=TARGET) / UDP(sport=40000, dport=1 + i)))
           for i in range(1200)]
    udp += [(T0 + 20 + i * 0.01, eth(IP(src=TARGET, dst=SCANNER) / ICMP(type=3, code=3)
                                     / IPerror(src=SCANNER, dst=TARGET) / UDPerror(sport=40000, dport=1 + i)))
            for i in range(10)]  # rate-limited port unreachables
    alerts, _ = run_packets(tmp_path, fin + udp)
    by = types(alerts)
    assert "traffic_burst" not in by
    assert len(by["port_scan"]) >= 1


def test_a_udp_flood_of_one_port_is_still_a_traffic_burst(tmp_path):
    pkts = [(T0 + i * 0.0001, eth(IP(src=SCANNER, dst=TARGET) / UDP(sport=20000 + i, dport=9999) / (b"x" * 32)))
            for i in range(1200)]  # hping3 --udp: a source port each
    alerts, _ = run_packets(tmp_path, pkts)
    (burst,) = types(alerts)["traffic_burst"]
    assert burst["evidence"]["packets"] == 1200
    # 1,200 packets within 0.12 s: about 10,000 per second, not 1,200 / 2 s
    assert 9_000 <= burst["evidence"]["peak_pps"] <= 11_000


def test_challenge_acks_of_a_flooded_victim_are_no_ack_scan(tmp_path):
    """A SYN on a tuple the victim still holds draws a challenge ACK; the flooder's kernel answers
    it with a bare RST. Over many source ports that looked like an ACK scan by the victim."""
    pkts = []
    for i in range(60):
        t = T0 + i * 0.01
        sport = 30000 + i
        pkts.append((t, eth(IP(src=SCANNER, dst=TARGET) / TCP(sport=sport, dport=80, flags="S", seq=1))))
        pkts.append((t + 0.001, eth(IP(src=TARGET, dst=SCANNER) / TCP(sport=80, dport=sport, flags="A", seq=9, ack=7))))
        pkts.append((t + 0.002, eth(IP(src=SCANNER, dst=TARGET) / TCP(sport=sport, dport=80, flags="R", seq=7))))
    alerts, _ = run_packets(tmp_path, pkts)
    assert not [a for a in alerts if a.get("src_ip") == TARGET]



def test_probes_after_the_scan_alert_are_its_update_not_alerts_and_not_lost(tmp_path):
    # the scan alert is written in its second; 5 s later the scanner probes two watched ports
    pkts = syn_scan(T0, SCANNER, TARGET, range(100, 160)) + syn_scan(T0 + 5, SCANNER, TARGET, [4444, 31337])
    alerts, engine = run_packets(tmp_path, pkts)
    by = types(alerts + engine.alerts.finish())  # the run ends inside the cooldown: the update comes then
    assert "suspicious_port" not in by
    scan, update = by["port_scan"]
    assert "watched_ports_touched" not in scan["evidence"]
    assert update["update_of"] == {"flow_id": scan["flow_id"], "timestamp": scan["timestamp"], "message": scan["message"]}
    assert update["flow_id"] == scan["flow_id"] and update["evidence"]["distinct_ports"] == scan["evidence"]["distinct_ports"]
    late = watched_syns_in(str(tmp_path / "t.pcap"), SCANNER)
    assert update["evidence"]["watched_ports_touched"] == sorted(late) == [4444, 31337]
    assert update["evidence"]["watched_port_probes"] == 2
    assert update["message"] == f"{scan['message']} [update: watched ports 4444, 31337 probed since {scan['timestamp']}]"
    assert update["timestamp"].endswith("00:00:05.001000+0000")  # the last late probe


def test_the_update_comes_when_the_cooldown_ends_and_later_probes_alert_on_their_own(tmp_path):
    # probes at 5 s (inside the 30 s cooldown), traffic at 31 s ends it, a probe at 40 s is its own alert
    pkts = (syn_scan(T0, SCANNER, TARGET, range(100, 160)) + syn_scan(T0 + 5, SCANNER, TARGET, [4444])
            + syn_scan(T0 + 31, "10.2.0.9", TARGET, [80]) + syn_scan(T0 + 40, SCANNER, TARGET, [6667]))
    alerts, _ = run_packets(tmp_path, pkts)
    kinds = [(a["type"], "update_of" in a, a["timestamp"][11:19]) for a in alerts]
    assert kinds == [("port_scan", False, "00:00:00"), ("port_scan", True, "00:00:05"),
                     ("suspicious_port", False, "00:00:40")]


def test_a_scan_that_grew_has_one_update_with_its_late_probes(tmp_path):
    # 60 ports, then (suppressed: not tenfold) 200 more ports and a watched-port probe 12 s later
    pkts = (syn_scan(T0, SCANNER, TARGET, range(100, 160))
            + syn_scan(T0 + 12, SCANNER, TARGET, [*range(1000, 1200), 4444]))
    alerts, engine = run_packets(tmp_path, pkts)
    scan, update = types(alerts + engine.alerts.finish())["port_scan"]
    assert "[update: distinct_ports 60 -> 261 since " in update["message"]  # all 261 within the slow window
    assert update["evidence"]["watched_ports_touched"] == [4444] and update["update_of"]["distinct_ports"] == 60


def test_probes_after_a_scans_update_update_what_the_update_said(tmp_path):
    """A scan alert (20 ports: the short window's), its update once it grew (60 ports: the slow
    window's, within the cooldown), then a watched-port probe: the probe's update carries the 60
    ports the last update told, not the first alert's 20 (recorded: nmap -sU's last update said 20
    ports after an update of 35), and names the scan's alert as the one it updates."""
    pkts = (syn_scan(T0, SCANNER, TARGET, range(100, 120)) + syn_scan(T0 + 2, SCANNER, TARGET, range(200, 240))
            + syn_scan(T0 + 4, SCANNER, TARGET, [4444]))
    alerts, engine = run_packets(tmp_path, pkts)
    by = types(alerts + engine.alerts.finish())
    assert "suspicious_port" not in by
    scan, grown, late = by["port_scan"]
    assert scan["evidence"]["distinct_ports"] == 20 and grown["evidence"]["distinct_ports"] == 60
    assert late["update_of"] == grown["update_of"] and grown["update_of"]["timestamp"] == scan["timestamp"]
    assert late["evidence"]["distinct_ports"] == 60 and late["evidence"]["watched_ports_touched"] == [4444]
    assert late["message"] == f"{scan['message']} [update: watched ports 4444 probed since {grown['timestamp']}]"
