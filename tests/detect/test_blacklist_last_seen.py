"""blacklist evidence: first_seen and last_seen span the listed address's packets of the alert."""

from __future__ import annotations

from conftest import cli, read_alerts
from crafted import T0
from scapy.layers.inet import IP, TCP

from wirewatch.craft import eth, write_pcap
from wirewatch.schema import format_ts


def test_last_seen_is_the_last_packet_not_the_first(tmp_path):
    times = [T0 + i * 0.05 for i in range(5)]
    pkts = [(t, eth(IP(src="203.0.113.9", dst="10.4.0.1") / TCP(sport=40000 + i, dport=80, flags="S")))
            for i, t in enumerate(times)]
    pcap = write_pcap(str(tmp_path / "b.pcap"), pkts)
    (tmp_path / "list.txt").write_text("203.0.113.9\n")
    log = tmp_path / "a.json"
    r = cli("read", pcap, "--blacklist", str(tmp_path / "list.txt"), "--logfile", str(log), "--quiet")
    assert r.returncode == 0, r.stderr
    (alert,) = [a for a in read_alerts(log) if a["type"] == "blacklist"]
    e = alert["evidence"]
    assert e["packets"] == 5 and e["first_seen"] == format_ts(times[0]) and e["last_seen"] == format_ts(times[-1])
