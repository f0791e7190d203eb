"""A real headless Chromium (Debian's) against a real `wirewatch dashboard` process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import CORPUS
from ports import free_port, wait_listening

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts"
SRC = str(Path(__file__).resolve().parent.parent / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "WIREWATCH_WEB__TOKEN": "browser-test-token"}


def read_into(db: Path, *pcaps: str) -> None:
    r = subprocess.run([sys.executable, "-m", "wirewatch", "read", *(str(CORPUS / p) for p in pcaps), "--db", str(db),
                        "--logfile", "", "--quiet", "--blacklist", str(CORPUS / "blacklist.txt")],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def dashboard():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
    work = Path(tempfile.mkdtemp(prefix="wwweb", dir="/tmp"))
    os.chmod(work, 0o777)  # the dashboard drops to nobody when started as root
    db = work / "store" / "ww.db"
    db.parent.mkdir()
    os.chmod(db.parent, 0o777)
    read_into(db, "dev01_nmap_syn_top100.pcap", "dev04_nmap_xmas.pcap", "dev07_nmap_ping_sweep.pcap",
              "dev13_rawip_gre47.pcap", "dev18_blacklist_src.pcap")
    for f in db.parent.iterdir():
        os.chmod(f, 0o666)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "dashboard", "--db", str(db), "--port", str(port)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_listening(port, proc, 20)
    yield f"http://127.0.0.1:{port}", db, proc
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(work, ignore_errors=True)


def test_dashboard_in_a_real_browser(dashboard):
    from playwright.sync_api import sync_playwright

    base, db, proc = dashboard
    status = Path(f"/proc/{proc.pid}/status").read_text()
    assert status.split("Uid:")[1].split()[0] != "0", "the dashboard must not run as root"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        assert "/login" in page.url
        page.fill("#token", "browser-test-token")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-loaded='1']", timeout=15000)
        drawn = page.evaluate("""() => ['chart-types', 'chart-apm', 'chart-sources', 'chart-pps'].map(id => {
            const c = Chart.getChart(id); return c ? c.data.datasets[0].data.reduce((a, b) => a + b, 0) : -1; })""")
        assert all(v > 0 for v in drawn), drawn
        stored = int(page.inner_text("[data-k=total_alerts]"))
        assert stored >= 5 and page.locator("#latest tbody tr").count() == min(10, stored)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

        page.goto(base + "/alerts")
        page.wait_for_selector("#alert-table tbody tr")
        assert page.locator("#alert-table tbody tr").count() == stored
        page.select_option("select[name=type]", "unusual_protocol")
        page.click("#filters button[type=submit]")
        page.wait_for_function("() => [...document.querySelectorAll('#alert-table tbody tr td:nth-child(3)')]"
                               ".every(td => td.textContent === 'unusual_protocol')")
        page.locator("#alert-table tbody tr a").first.click()
        page.wait_for_selector("h1")
        assert "Unusual traffic from 10.10.0.66" in page.inner_text("h1")
        assert "tcp flags" in page.inner_text(".evidence").lower() or "protocol" in page.inner_text(".evidence").lower()

        page.goto(base + "/alerts")
        page.wait_for_selector("#alert-table tbody tr")
        before = page.locator("#alert-table tbody tr").count()
        read_into(db, "dev15_icmp_ping_flood.pcap")  # another analysis into the same store
        page.wait_for_selector("#alert-table tbody tr.fresh", timeout=10000)
        assert page.locator("#alert-table tbody tr").count() > before
        assert "traffic_burst" in page.inner_text("#alert-table tbody tr.fresh >> nth=0")
        page.screenshot(path=str(ARTIFACTS / "alerts.png"))
        assert errors == []
        browser.close()
