"""host_sweep: an echo request to a multicast group or the broadcast address probes every host
that answers it (ping6 ff02::1%eth0, THC's alive6, ping -b); the replies name the hosts."""

from __future__ import annotations

from pathlib import Path

from conftest import run_file, run_packets
from crafted import T0, types
from scapy.layers.inet import ICMP, IP

from wirewatch.craft import eth

HELD_OUT = Path(__file__).resolve().parent.parent / "heldout"


def test_an_all_nodes_ping_answered_by_20_hosts_is_a_sweep():
    """Recorded (held-out lab): `ping -6 -c 3 ff02::1%eth0` on a segment of 20 other hosts, each of
    which answers from its link-local address. Before: no alert (one request, to a group)."""
    alerts, engine = run_file(str(HELD_OUT / "ha17_ping6_all_nodes.pcap"))
    (sweep,) = types(alerts + engine.alerts.finish())["host_sweep"]
    assert sweep["src_ip"] == "fe80::1d:5eff:fe68:c8"  # the requester's link-local address
    ev = sweep["evidence"]
    assert ev["distinct_hosts"] == 20 and ev["service"] == "ICMP type 128" and ev["answers"]["replied"] >= 20
    assert "ff02::1" not in ev["sample_hosts"] and all(h.startswith("fe80::") for h in ev["sample_hosts"])


def broadcast_ping(hosts: int, src: str = "10.6.0.66"):
    pkts = [(T0, eth(IP(src=src, dst="255.255.255.255") / ICMP(type=8, id=7, seq=1)))]
    return pkts + [(T0 + 0.001 * (i + 1), eth(IP(src=f"10.6.0.{i + 1}", dst=src) / ICMP(type=0, id=7, seq=1)))
                   for i in range(hosts)]


def test_a_broadcast_ping_answered_by_many_hosts_is_a_sweep_and_by_a_few_is_not(tmp_path):
    (sweep,) = types(run_packets(tmp_path, broadcast_ping(16))[0])["host_sweep"]
    assert sweep["src_ip"] == "10.6.0.66" and sweep["evidence"]["distinct_hosts"] == 16
    assert "host_sweep" not in types(run_packets(tmp_path, broadcast_ping(5))[0])


def test_replies_to_unicast_pings_are_no_group_answers(tmp_path):
    # a host pinging 16 hosts once each and getting answers is a sweep of 16, counted once, not 32
    pkts = []
    for i in range(16):
        dst = f"10.6.1.{i + 1}"
        pkts += [(T0 + 0.01 * i, eth(IP(src="10.6.0.66", dst=dst) / ICMP(type=8, id=1, seq=i))),
                 (T0 + 0.01 * i + 0.001, eth(IP(src=dst, dst="10.6.0.66") / ICMP(type=0, id=1, seq=i)))]
    (sweep,) = types(run_packets(tmp_path, pkts)[0])["host_sweep"]
    assert sweep["evidence"]["distinct_hosts"] == 16
    # echo replies with no group request before them (e.g. answers to someone else) sweep nothing
    lone = [(T0 + 0.001 * i, eth(IP(src=f"10.6.2.{i + 1}", dst="10.6.0.77") / ICMP(type=0, id=1, seq=i))) for i in range(20)]
    assert "host_sweep" not in types(run_packets(tmp_path, lone)[0])


def test_forged_group_pingers_beyond_the_cap_are_evicted_in_bulk_and_counted(tmp_path):
    """Who pinged a group is remembered per requester, an address a forger chooses: over
    max_sources (64 here) the oldest go, counted, and a real requester after 500 forged ones is
    still told from the hosts that answer it (main removed them one table scan each, uncounted)."""
    forged = [(T0 + 0.0001 * i, eth(IP(src=f"10.{7 + i // 250}.{i % 250}.9", dst="255.255.255.255") / ICMP(type=8)))
              for i in range(500)]
    real = [(t + 0.1, p) for t, p in broadcast_ping(16)]
    alerts, engine = run_packets(tmp_path, forged + real, {"detect.host_sweep.max_sources": 64})
    (sweep,) = types(alerts)["host_sweep"]
    assert sweep["src_ip"] == "10.6.0.66" and sweep["evidence"]["distinct_hosts"] == 16
    sweeper = next(d for d in engine.detectors if d.name == "host_sweep")
    assert len(sweeper.group_pingers) <= 64
    assert sweeper.stats()["host_sweep_group_pingers_evicted"] >= 500 + 1 - 64
