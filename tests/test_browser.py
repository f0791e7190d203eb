"""A real headless Chromium (Debian's) against a real `wirewatch dashboard` process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS
from ports import hand_to_nobody, launch_chromium, need_chromium, nobody_store, open_page, start_dashboard

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
    need_chromium()
    with nobody_store("wwweb") as (_, db):
        read_into(db, "dev01_nmap_syn_top100.pcap", "dev04_nmap_xmas.pcap", "dev07_nmap_ping_sweep.pcap",
                  "dev13_rawip_gre47.pcap", "dev18_blacklist_src.pcap")
        hand_to_nobody(db)
        with start_dashboard(ENV, "--db", str(db), seconds=20) as (base, proc):
            yield base, db, proc


def test_dashboard_in_a_real_browser(dashboard):
    from playwright.sync_api import sync_playwright

    base, db, proc = dashboard
    status = Path(f"/proc/{proc.pid}/status").read_text()
    assert status.split("Uid:")[1].split()[0] != "0", "the dashboard must not run as root"
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = open_page(browser, 1400, 1000)
        answers: list[tuple[int, str]] = []
        page.on("response", lambda r: answers.append((r.status, r.url.removeprefix(base))))
        page.goto(base + "/")
        assert "/login" in page.url
        page.fill("#token", "browser-test-token")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-loaded='1']", timeout=15000)
        drawn = page.evaluate("""() => ['chart-types', 'chart-apm', 'chart-sources', 'chart-pps'].map(id => {
            const c = Chart.getChart(id); return c ? c.data.datasets[0].data.reduce((a, b) => a + b, 0) : -1; })""")
        assert all(v > 0 for v in drawn), drawn
        stored = int(page.inner_text("[data-k=total_alerts]"))
        # a read has no uptime (main: "0h 0m"): the stats event is offline, its uptime the read's wall time
        assert page.text_content("#health [data-k=uptime_s] >> xpath=../h3") == "Offline read"
        assert re.fullmatch(r"< 1 s|\d+ s", page.inner_text("[data-k=uptime_s]"))
        assert stored >= 5 and page.locator("#latest tbody tr").count() == min(10, stored)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
        # the icon the pages link, fetched by the browser itself (main: /favicon.ico, a 404 on every page)
        assert (200, "/static/favicon.svg") in answers and [a for a in answers if a[0] >= 400] == []

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


def test_every_page_fits_a_phone_screen(dashboard):
    """At 360 px wide (a phone) no page scrolls sideways and the whole menu is on screen. On main the
    overview's panels (min 420 px), the menu (Tune, Mutes and Log out off the right edge), the tune
    page's run list and the alert pages' tables made pages 504-590 px wide; the 9-column alert table
    broke every word into letters (now it scrolls sideways in its own box)."""
    from playwright.sync_api import sync_playwright

    base, db, proc = dashboard
    tune = subprocess.run([sys.executable, "-m", "wirewatch", "tune", str(CORPUS / "dev01_nmap_syn_top100.pcap"),
                           "--db", str(db), "--no-progress"], capture_output=True, text=True, env=ENV, timeout=120)
    assert tune.returncode == 0, tune.stderr
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = open_page(browser, 360, 800)
        page.goto(base + "/login?token=browser-test-token")
        page.wait_for_load_state("networkidle")
        wide = {}
        for path in ["/", "/alerts", "/alerts/1", "/sensors", "/incidents", "/incidents/10.10.0.66", "/tune", "/mutes"]:
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            width = page.evaluate("() => document.documentElement.scrollWidth")
            menu = page.evaluate("() => Math.max(...[...document.querySelectorAll('header a, header button')]"
                                 ".map(e => e.getBoundingClientRect().right))")
            if width > 360 or menu > 360:
                wide[path] = (width, menu)
            if path == "/alerts":
                lines = page.evaluate("() => [...document.querySelectorAll('#alert-table tbody td:nth-child(3)')]"
                                      ".map(td => { const r = document.createRange(); r.selectNodeContents(td);"
                                      " return r.getClientRects().length; })")
                assert lines and set(lines) == {1}, lines  # each type on one line (unusual_protocol whole)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone-mutes.png"))
        assert wide == {}, wide
        assert errors == []
        browser.close()


def test_alerts_per_minute_draws_every_minute_of_its_hour(dashboard):
    """The store lists only minutes that had alerts; the chart joined them up as if adjacent (on
    the corpus read: 22:25, 22:26, 22:27 and 22:28 as four neighbouring points of a 71-minute capture's
    last hour). Now every minute of the hour up to the newest alert is a point, 0 where none came."""
    import sqlite3

    from playwright.sync_api import sync_playwright

    base, db, proc = dashboard
    with sqlite3.connect(db) as conn:
        per = dict(conn.execute("SELECT minute, sum(count) FROM alert_minutes GROUP BY minute").fetchall())
    last = max(per)
    hour = [per.get(m, 0) for m in range(last - 59, last + 1)]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = open_page(browser, 1400, 1000)
        page.goto(base + "/login?token=browser-test-token")
        page.wait_for_selector("body[data-loaded='1']", timeout=15000)
        drawn = page.evaluate("() => { const c = Chart.getChart('chart-apm'); "
                              "return {labels: c.data.labels, values: c.data.datasets[0].data}; }")
        assert drawn["values"] == hour and len(drawn["labels"]) == 60
        assert len(set(drawn["labels"])) == 60 and sum(hour) > 0 and hour.count(0) > 0
        assert "(last hour)" in page.inner_text("#chart-apm >> xpath=../..")
        assert errors == []
        browser.close()
