"""port_scan tells how far a scan got, not only its first second: a reported scan is reported
again within its window whenever it reached 10 % more ports (count/window.due_or_grown), so the
alert manager's update and tally count the whole scan."""

from __future__ import annotations

from pathlib import Path

from conftest import decode_file, run_file, run_packets
from crafted import T0, types

from wirewatch.craft import syn_scan
from wirewatch.decode import TCP_ACK, TCP_RST, TCP_SYN

HELD_OUT = Path(__file__).resolve().parent.parent / "heldout"
SCANNER, TARGET = "10.3.0.66", "10.3.0.11"


def test_a_scan_of_a_host_that_drops_everything_is_told_whole():
    """Recorded (held-out lab): nmap -sS --max-retries 1 -p 1-300 of a host whose nftables drops
    every TCP packet: 600 unanswered SYNs over 7 s, at about 100 a second. Before, the one alert
    said 40 ports (its first second) and nothing more; now its update and tally follow the scan."""
    path = str(HELD_OUT / "ha09_scan_all_filtered.pcap")
    b = decode_file(path)
    syn = (b.proto == 6) & ((b.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN)
    scanned = len(set(b.dport[syn].tolist()))
    assert scanned == 300
    alerts, engine = run_file(path)
    scans = types(alerts + engine.alerts.finish())["port_scan"]
    first, last = scans[0], scans[-1]
    assert "update_of" not in first and first["evidence"]["distinct_ports"] < 100
    assert last["update_of"]["timestamp"] == first["timestamp"]
    assert last["evidence"]["distinct_ports"] >= 0.9 * scanned  # within 10 % of the whole scan
    assert last["evidence"]["answers"]["unanswered_or_filtered"] == last["evidence"]["probes"]
    assert len(scans) <= 3  # the alert, one early update, the tally: growth is not a stream of alerts


def test_a_scan_over_several_slices_ends_with_its_whole_count(tmp_path):
    # 50 ports a second for 4 s: the first slice crosses the threshold with 50, the scan ends with 200
    pkts = syn_scan(T0, SCANNER, TARGET, range(1000, 1200), gap=0.02)
    alerts, engine = run_packets(tmp_path, pkts)
    scans = types(alerts + engine.alerts.finish())["port_scan"]
    assert scans[0]["evidence"]["distinct_ports"] == 50
    assert scans[-1]["evidence"]["distinct_ports"] >= 180 and "update_of" in scans[-1]


def test_a_scan_that_only_retransmits_is_told_once(tmp_path):
    # the same 30 ports probed again every second for 5 s: no growth, no update
    pkts = [p for i in range(5) for p in syn_scan(T0 + i, SCANNER, TARGET, range(2000, 2030), gap=0.001)]
    alerts, engine = run_packets(tmp_path, pkts)
    (scan,) = types(alerts + engine.alerts.finish())["port_scan"]
    assert scan["evidence"]["distinct_ports"] == 30
