"""The alert page's "download pcap" (web/pages.py /alerts/ID/pcap, /api/alerts/ID/pcap): an
alert read from a corpus capture downloads exactly its packets (tshark compares addresses,
ports and time stamps with the original file); login required; 400/404 for bad requests; 409
when the capture at the alert's path was replaced."""

from __future__ import annotations

import shutil

from conftest import CORPUS, cli
from dashboard_fixtures import TOKEN, login
from pcap_oracle import alert_frames, frames, same_packets

from wirewatch.web import create_app

SCAN = CORPUS / "dev01_nmap_syn_top100.pcap"


def _read(tmp_path, capture) -> str:
    db = str(tmp_path / "ww.db")
    r = cli("read", str(capture), "--db", db, "--logfile", "", "--quiet")
    assert r.returncode == 0, r.stderr
    return db


def test_downloaded_pcap_holds_exactly_the_alerts_packets(tmp_path):
    db = _read(tmp_path, SCAN)
    client = login(create_app(db, TOKEN).test_client())
    alert = client.get("/api/alerts/1").get_json()
    record = alert["record"]
    assert record["type"] == "port_scan"
    page = client.get("/alerts/1").get_data(as_text=True)
    assert "download pcap" in page and "/alerts/1/pcap" in page
    r = client.get("/alerts/1/pcap")
    assert r.status_code == 200 and r.mimetype == "application/vnd.tcpdump.pcap"
    assert "attachment" in r.headers["Content-Disposition"]
    out = tmp_path / "alert.pcap"
    out.write_bytes(r.get_data())
    want = alert_frames(frames(str(SCAN)), record)
    assert len(want) > 100  # the scan's probes and the victim's answers
    want = want[:100]  # output.alert_frames
    assert record["packets"]["frames"] == [w["frame"] for w in want]
    assert record["packets"]["matched"] == len(alert_frames(frames(str(SCAN)), record))
    assert record["packets"]["file"] == str(SCAN.resolve())
    same_packets(frames(str(out)), want)
    assert client.get("/api/alerts/1/pcap").get_data() == r.get_data()


def test_anonymous_download_is_refused(tmp_path):
    db = _read(tmp_path, SCAN)
    client = create_app(db, TOKEN).test_client()
    page = client.get("/alerts/1/pcap")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert client.get("/api/alerts/1/pcap").status_code == 401
    assert client.get("/api/alerts/1/pcap", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_bad_ids_and_a_capture_no_longer_there(tmp_path):
    capture = tmp_path / "moved.pcap"
    shutil.copy(SCAN, capture)
    db = _read(tmp_path, capture)
    client = login(create_app(db, TOKEN).test_client())
    assert client.get("/api/alerts/abc/pcap").status_code == 400
    assert "alert id" in client.get("/api/alerts/abc/pcap").get_json()["error"]
    assert client.get("/api/alerts/0/pcap").status_code == 400
    assert client.get("/api/alerts/999/pcap").status_code == 404
    assert client.get("/alerts/999/pcap").status_code == 404
    assert client.get("/api/alerts/1/pcap").status_code == 200
    capture.unlink()
    r = client.get("/api/alerts/1/pcap")
    assert r.status_code == 404 and str(capture) in r.get_data(as_text=True)


def test_a_replaced_capture_is_a_409_that_says_so(tmp_path):
    """Review finding: the download gave another capture's packets when the file at the
    alert's path had been replaced. Now 409 naming the file and why, page and API alike."""
    capture = tmp_path / "cap.pcap"
    shutil.copy(SCAN, capture)
    db = _read(tmp_path, capture)
    client = login(create_app(db, TOKEN).test_client())
    assert client.get("/alerts/1/pcap").status_code == 200
    shutil.copy(CORPUS / "dev04_nmap_xmas.pcap", capture)
    for url in ("/alerts/1/pcap", "/api/alerts/1/pcap"):
        r = client.get(url)
        text = r.get_data(as_text=True)
        assert r.status_code == 409 and str(capture) in text and "replaced or changed" in text
