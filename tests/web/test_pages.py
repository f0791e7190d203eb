"""web/pages.py: the HTML pages over a store holding alerts the real engine raised."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import cli
from dashboard_fixtures import TOKEN, login
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from wirewatch.craft import BASE_TS, eth, syn_scan, write_pcap
from wirewatch.detect import registry
from wirewatch.web import create_app

SCANNER, VICTIM = "10.9.8.7", "10.0.0.2"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages")
    pkts = syn_scan(BASE_TS, SCANNER, VICTIM, range(1000, 1040), gap=0.01)
    pkts += [(BASE_TS + 1 + i * 0.01, eth(IP(src="10.4.4.4", dst="10.0.0.2") / TCP(sport=5000, dport=23, flags="S")))
             for i in range(3)]
    capture = write_pcap(str(tmp / "scan.pcap"), sorted(pkts, key=lambda p: p[0]))
    path = str(tmp / "ww.db")
    r = cli("read", capture, "--db", path, "--quiet", "--no-progress", "--set", f"store.state_dir={tmp}")
    assert r.returncode == 0, r.stderr
    return path


@pytest.fixture
def client(db):
    return login(create_app(db, TOKEN).test_client())


def test_every_page_renders_for_a_logged_in_user(client):
    for url in ("/", "/alerts", "/sensors", "/incidents", f"/incidents/{SCANNER}", "/tune", "/mutes"):
        r = client.get(url)
        assert r.status_code == 200 and r.mimetype == "text/html", url
        assert 'name="csrf-token"' in r.get_data(as_text=True), url


def test_the_type_filter_lists_every_registered_detector(client):
    page = client.get("/alerts").get_data(as_text=True)
    for name in registry.names():
        assert f"<option>{name}</option>" in page, name


def test_an_alerts_detail_shows_its_evidence_and_record(client):
    r = client.get("/api/alerts?type=port_scan").get_json()
    scan = r["alerts"][0]
    page = client.get(f"/alerts/{scan['id']}").get_data(as_text=True)
    record = client.get(f"/api/alerts/{scan['id']}").get_json()["record"]
    assert record["src_ip"] == SCANNER and SCANNER in page
    for key in record["evidence"]:
        assert key in page, key
    assert json.dumps(record["evidence"]["distinct_ports"]) in page


def test_a_missing_alert_or_a_bad_address_is_an_error_page(client):
    assert client.get("/alerts/999999").status_code == 404
    r = client.get("/incidents/not-an-address")
    assert r.status_code == 400 and "src" in r.get_data(as_text=True)


def test_an_alerts_pcap_is_its_frames_of_the_capture(client, db):
    scan = client.get("/api/alerts?type=port_scan").get_json()["alerts"][0]
    r = client.get(f"/alerts/{scan['id']}/pcap")
    assert r.status_code == 200 and r.mimetype == "application/vnd.tcpdump.pcap"
    assert r.headers["Content-Disposition"] == f"attachment; filename=wirewatch-alert-{scan['id']}.pcap"
    frames = rdpcap(io.BytesIO(r.data))
    assert {(p[IP].src, p[IP].dst) for p in frames} == {(SCANNER, VICTIM), (VICTIM, SCANNER)}  # probes and answers
    assert sum(p[IP].src == SCANNER and p[TCP].flags == "S" for p in frames) >= 20


def test_an_alerts_pcap_whose_capture_is_gone_is_a_404_naming_why(client, db):
    scan = client.get("/api/alerts?type=port_scan").get_json()["alerts"][0]
    capture = Path(db).parent / "scan.pcap"
    moved = capture.with_suffix(".gone")
    capture.rename(moved)
    try:
        r = client.get(f"/alerts/{scan['id']}/pcap")
        assert r.status_code == 404 and "scan.pcap" in r.get_data(as_text=True)
    finally:
        moved.rename(capture)


def test_chart_js_is_served_from_node_modules_or_is_a_404(db):
    app = create_app(db, TOKEN)
    c = login(app.test_client())
    assert app.config["VENDOR"] is not None, "make setup installs Chart.js into node_modules"
    r = c.get("/vendor/chart.umd.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript" and b"Chart" in r.data[:4000]
    app.config["VENDOR"] = None
    assert c.get("/vendor/chart.umd.js").status_code == 404


def test_the_favicon_is_our_svg_linked_from_every_page_and_at_favicon_ico(db):
    """Browsers ask for /favicon.ico on every page (main: 404 each time); it answers, without a
    login as static/ does, the SVG icon that the pages and the login page link."""
    anonymous = create_app(db, TOKEN).test_client()
    icon = anonymous.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.data.startswith(b"<svg ") and b"<script" not in icon.data
    linked = anonymous.get("/static/favicon.svg")
    assert linked.status_code == 200 and linked.data == icon.data
    link = '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">'
    assert link in anonymous.get("/login").get_data(as_text=True)
    client = login(create_app(db, TOKEN).test_client())
    for url in ("/", "/alerts", "/sensors", "/incidents", "/tune", "/mutes", "/alerts/1"):
        assert link in client.get(url).get_data(as_text=True), url
