"""blacklist: traffic from or to a listed address or prefix, IPv4 and IPv6; a flood of listed
prefix is one alert with capped evidence; a reload reads the lists again."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import T0, ip
from scapy.layers.inet import TCP, UDP
from scapy.layers.l2 import Ether

from wirewatch import config
from wirewatch.blocklist import BlocklistError
from wirewatch.detect.blacklist import MAX_PEERS, Blacklist, BlacklistConfig

LISTED = {4: "10.66.0.9", 6: "fd00:66::9"}


@pytest.fixture
def lists(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("10.66.0.9  # one host\nfd00:66::/64\n10.77.0.0/16 ; a whole network\n")
    return {"detect.blacklist.files": [str(path)]}


def packet(v, src, dst, t, dport=80):
    return (t, Ether(dst="02:00:00:00:00:02") / ip(v, src, dst) / TCP(sport=40000, dport=dport, flags="S"))


@pytest.mark.parametrize("v", [4, 6])
def test_traffic_from_and_to_a_listed_address(tmp_path, lists, v):
    other = "10.1.0.5" if v == 4 else "fd00:1::5"
    pkts = [packet(v, LISTED[v], other, T0), packet(v, LISTED[v], other, T0 + 0.1, 443),
            packet(v, other, LISTED[v], T0 + 5)]
    alerts = [a for a in run_packets(tmp_path, pkts, lists)[0] if a["type"] == "blacklist"]
    assert [(a["src_ip"], a["evidence"]["direction"]) for a in alerts] == [(LISTED[v], "src")]  # one alert per address
    ev = alerts[0]["evidence"]
    assert ev["address"] == LISTED[v] and ev["packets"] == 2 and ev["peers"] == [other]
    assert ev["entry"] == ("10.66.0.9" if v == 4 else "fd00:66::/64")


def test_unlisted_traffic_is_silent(tmp_path, lists):
    pkts = [packet(4, "10.66.0.10", "10.1.0.5", T0), packet(6, "fd00:67::9", "fd00:1::5", T0 + 1)]
    assert run_packets(tmp_path, pkts, lists)[0] == []


def test_listed_prefix_flood_is_one_alert_with_capped_evidence(tmp_path, lists):
    """10x MAX_PEERS distinct listed sources, each to its own peer: the detector holds no
    per-address state, so the flood is one alert for the entry with a capped peer sample."""
    n = 10 * MAX_PEERS
    pkts = [(T0 + i * 0.001, Ether(dst="02:00:00:00:00:02") / ip(4, f"10.77.0.{i + 1}", f"10.1.0.{i + 1}")
             / UDP(sport=1, dport=53)) for i in range(n)]
    alerts, engine = run_packets(tmp_path, pkts, lists)
    (alert,) = [a for a in alerts if a["type"] == "blacklist"]
    assert alert["evidence"]["entry"] == "10.77.0.0/16" and alert["evidence"]["packets"] == n
    assert len(alert["evidence"]["peers"]) == MAX_PEERS
    assert engine.summary()["detector_state"]["blacklist_entries"] == 3
    assert engine.summary()["detector_state"]["blacklist_packets"] == n


def test_reload_reads_the_lists_again_and_a_bad_file_keeps_the_old_list(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("10.66.0.9\n")
    det = Blacklist(BlacklistConfig(files=[str(path)]))
    assert len(det.blocklist) == 1
    path.write_text("10.66.0.9\n10.66.0.10\n")
    det.reconfigure(BlacklistConfig(files=[str(path)]))
    assert len(det.blocklist) == 2
    with pytest.raises(BlocklistError, match="bad.txt"):
        path.write_text("not an address\n")
        det.reconfigure(BlacklistConfig(files=[str(path)]))
    assert len(det.blocklist) == 2
    assert config.build().detect.blacklist.files == []
