"""Enrichment of alerts from crafted packets with public addresses: country and AS from the
default data (geoip2fast's bundled GeoLite2 data) and from a MaxMind-format database the
test writes; private and reserved ranges labelled; looked up per alert, not per packet."""

from __future__ import annotations

import pytest
from conftest import cli, run_packets
from netaddr import IPSet
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from wirewatch import config
from wirewatch.craft import eth
from wirewatch.enrich import EnrichConfig, Enricher


def listed_traffic(tmp_path, pairs, packets_each=1):
    """Packets from each (src, dst) pair to port 443; every src is on a blocklist, so each
    pair gives one blacklist alert (the detector that fires on a single packet)."""
    bl = tmp_path / "bl.txt"
    bl.write_text("".join(f"{s}\n" for s, _ in pairs))
    pkts, t = [], 1.0
    for src, dst in pairs:
        layer = IPv6 if ":" in src else IP
        for i in range(packets_each):
            pkts.append((t, eth(layer(src=src, dst=dst) / TCP(sport=443, dport=50000 + i, flags="SA"))))
            t += 0.001
    return {"detect.blacklist.files": [str(bl)]}, pkts


def enrichment_by_src(alerts):
    return {a["src_ip"]: a["enrichment"] for a in alerts if a["type"] == "blacklist"}


def test_default_data_gives_country_and_as_for_public_addresses(tmp_path):
    overrides, pkts = listed_traffic(tmp_path, [("8.8.8.8", "192.168.1.5"), ("2001:4860:4860::8888", "fd00::5"),
                                                ("1.1.1.1", "100.64.0.9")])
    alerts, _ = run_packets(tmp_path, pkts, overrides)
    got = enrichment_by_src(alerts)
    assert got["8.8.8.8"] == {"src": {"label": "public", "country": "US", "country_name": "United States",
                                      "as": {"name": "GOOGLE"}}, "dest": {"label": "private"}}
    assert got["2001:4860:4860::8888"]["src"]["country"] == "US"
    assert got["2001:4860:4860::8888"]["src"]["as"] == {"name": "GOOGLE"}
    assert got["2001:4860:4860::8888"]["dest"] == {"label": "private"}
    assert got["1.1.1.1"]["src"]["as"] == {"name": "CLOUDFLARENET"} and got["1.1.1.1"]["dest"] == {"label": "reserved"}


def test_reserved_loopback_and_multicast_are_labelled_without_lookups():
    e = Enricher(EnrichConfig(mmdb=[]))
    assert [e.describe(a)["label"] for a in ("10.1.2.3", "172.20.0.1", "192.0.2.7", "127.0.0.1", "169.254.1.1",
                                             "224.0.0.251", "fe80::1", "2001:db8::1")] == \
        ["private", "private", "reserved", "loopback", "link-local", "multicast", "link-local", "reserved"]
    assert e.lookups == 0 and e.source is None  # the default data is not even loaded


@pytest.fixture
def mmdb(tmp_path):
    from mmdb_writer import MMDBWriter

    path = tmp_path / "test-asn-country.mmdb"
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Test")
    w.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
                                               "autonomous_system_number": 64511,
                                               "autonomous_system_organization": "Example Transit"})
    w.to_db_file(str(path))
    return str(path)


def test_a_maxmind_database_gives_as_number_and_name(tmp_path, mmdb):
    overrides, pkts = listed_traffic(tmp_path, [("81.2.69.160", "10.0.0.5"), ("8.8.4.4", "10.0.0.5")],
                                     packets_each=50)
    alerts, engine = run_packets(tmp_path, pkts, {**overrides, "enrich.mmdb": [mmdb]})
    got = enrichment_by_src(alerts)
    assert got["81.2.69.160"]["src"] == {"label": "public", "country": "GB", "country_name": "United Kingdom",
                                         "as": {"number": 64511, "name": "Example Transit"}}
    assert got["8.8.4.4"]["src"] == {"label": "public"}  # not in the given database: nothing made up
    # 100 packets, 2 alerts: one lookup per public address, none per packet
    assert engine.enricher.lookups == 2 and engine.summary()["detector_state"]["enrich_lookups"] == 2


def test_the_cache_is_capped_and_counts_evictions():
    e = Enricher(EnrichConfig(max_cached=16))
    for i in range(100):
        e.describe(f"10.0.{i}.1")
    assert len(e.cache) == 16 and e.evicted == 84


def test_enrichment_can_be_turned_off(tmp_path):
    overrides, pkts = listed_traffic(tmp_path, [("8.8.8.8", "192.168.1.5")])
    alerts, engine = run_packets(tmp_path, pkts, {**overrides, "enrich.enabled": False})
    assert alerts and all("enrichment" not in a for a in alerts) and engine.enricher is None


def test_a_file_that_is_not_a_maxmind_database_is_a_config_error(tmp_path):
    bad = tmp_path / "not.mmdb"
    bad.write_text("hello")
    r = cli("read", "/dev/null", "--set", f"enrich.mmdb={bad}", "--logfile", "", "--quiet")
    assert r.returncode == 2 and f"enrich.mmdb = '{bad}'" in r.stderr
    with pytest.raises(config.ConfigError):
        Enricher(EnrichConfig(mmdb=[str(bad)]))
