"""The dashboard shows who owns an address (alert detail, top sources, alert rows) and
filters the alert list by country and AS, over alerts the real pipeline stored from
crafted packets with public addresses."""

from __future__ import annotations

import pytest
from conftest import run_packets
from dashboard_fixtures import TOKEN, login
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from scapy.layers.inet import IP, TCP

from wirewatch.craft import eth
from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.web import create_app

SOURCES = {"81.2.69.160": ("GB", 64511, "Example Transit"), "8.8.8.8": ("US", 15169, "GOOGLE"),
           "10.9.9.9": None}


@pytest.fixture
def client(tmp_path):
    db = tmp_path / "geo.mmdb"
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Test")
    for ip, owner in SOURCES.items():
        if owner:
            w.insert_network(IPSet([ip + "/32"]), {"country": {"iso_code": owner[0]}, "autonomous_system_number":
                                                   owner[1], "autonomous_system_organization": owner[2]})
    w.to_db_file(str(db))
    listed = tmp_path / "bl.txt"
    listed.write_text("".join(f"{ip}\n" for ip in SOURCES))
    pkts = [(1.0 + i, eth(IP(src=ip, dst="10.0.0.5") / TCP(sport=443, dport=40000, flags="SA")))
            for i, ip in enumerate(SOURCES)]
    alerts, _ = run_packets(tmp_path, pkts, {"detect.blacklist.files": [str(listed)], "enrich.mmdb": [str(db)]})
    path = str(tmp_path / "ww.db")
    sink = SqliteSink(path)
    sink.write(alerts)
    sink.close()
    return login(create_app(path, TOKEN).test_client())


def sources_of(client, query):
    r = client.get(f"/api/alerts?{query}")
    assert r.status_code == 200, r.get_json()
    return sorted(a["src_ip"] for a in r.get_json()["alerts"])


def test_the_alert_list_filters_by_country_and_as(client):
    assert sources_of(client, "country=gb") == ["81.2.69.160"]
    assert sources_of(client, "asn=15169") == ["8.8.8.8"]
    assert sources_of(client, "asn=transit") == ["81.2.69.160"]
    assert sources_of(client, "country=FR") == []
    assert sources_of(client, "") == ["10.9.9.9", "8.8.8.8", "81.2.69.160"]
    rows = {a["src_ip"]: a["enrichment"] for a in client.get("/api/alerts").get_json()["alerts"]}
    assert rows["8.8.8.8"]["src"]["as"] == {"number": 15169, "name": "GOOGLE"}
    assert rows["10.9.9.9"]["src"] == {"label": "private"}


@pytest.mark.parametrize("bad", ["USA", "1", "%", "<s>"])
def test_a_bad_country_is_a_400_naming_it(client, bad):
    r = client.get(f"/api/alerts?country={bad}")
    assert r.status_code == 400 and r.get_json()["error"].startswith("country:")


def test_alert_detail_shows_country_and_as(client):
    alerts = client.get("/api/alerts").get_json()["alerts"]
    ids = {a["src_ip"]: a["id"] for a in alerts}
    page = client.get(f"/alerts/{ids['81.2.69.160']}").get_data(as_text=True)
    assert "Source owner" in page and "GB" in page and "AS64511 Example Transit" in page
    assert "/alerts?country=GB" in page and "/alerts?asn=64511" in page
    assert "Destination owner" in page and ">private<" in page
    page = client.get(f"/alerts/{ids['10.9.9.9']}").get_data(as_text=True)
    assert ">private<" in page


def test_top_sources_carry_their_owner(client):
    top = {s["src_ip"]: s["owner"] for s in client.get("/api/overview").get_json()["top_sources"]}
    assert top["8.8.8.8"]["country"] == "US" and top["8.8.8.8"]["as"]["name"] == "GOOGLE"
    assert top["10.9.9.9"] == {"label": "private"}
