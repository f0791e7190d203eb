"""A real headless Chromium (Debian's) on the fleet pages of a `wirewatch dashboard` over a
real PostgreSQL server holding three sensors' alerts (corpus captures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS
from pg_server import PgServer
from ports import launch_chromium, need_chromium, open_page, start_dashboard

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
TOKEN = "fleet-browser-token-" + "x" * 24
SENSORS = {"edge-a": ["dev01_nmap_syn_top100.pcap", "dev17_suspicious_ports.pcap"],
           "edge-b": ["dev04_nmap_xmas.pcap", "dev17_suspicious_ports.pcap"],
           "edge-c": ["dev07_nmap_ping_sweep.pcap"]}


@pytest.fixture
def fleet_dashboard(tmp_path):
    need_chromium()
    pg = PgServer()
    env = {**os.environ, "WIREWATCH_WEB__TOKEN": TOKEN, "WIREWATCH_OUTPUT__DB": pg.url(),
           "WIREWATCH_STORE__STATE_DIR": str(tmp_path)}
    for sensor, pcaps in SENSORS.items():
        r = subprocess.run([sys.executable, "-m", "wirewatch", "read", *(str(CORPUS / p) for p in pcaps),
                            "--sensor", sensor, "--logfile", "", "--quiet", "--no-progress"],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
    with start_dashboard(env) as (base, _):
        yield base
    pg.close()


def test_fleet_pages_in_a_real_browser(fleet_dashboard):
    from playwright.sync_api import sync_playwright

    base = fleet_dashboard
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = open_page(browser, 1400, 900)
        page.goto(base + "/login")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-loaded='1']", timeout=15000)

        page.goto(base + "/sensors")
        page.wait_for_selector("#sensor-table tbody tr", timeout=15000)
        rows = page.locator("#sensor-table tbody tr")
        assert sorted(rows.nth(i).get_attribute("data-sensor") for i in range(rows.count())) == sorted(SENSORS)
        assert all(int(rows.nth(i).locator("td").nth(9).inner_text()) > 0 for i in range(rows.count()))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "fleet-sensors.png"), full_page=True)

        page.goto(base + "/incidents")
        page.wait_for_selector("#incident-table tbody tr", timeout=15000)
        shared = page.locator("#incident-table tbody tr", has_text="edge-a").filter(has_text="edge-b")
        assert shared.count() >= 1  # one attacker, seen by two sensors, is one incident
        page.screenshot(path=str(ARTIFACTS / "fleet-incidents.png"), full_page=True)
        shared.first.locator("a").click()
        page.wait_for_selector("#timeline-table tbody tr", timeout=15000)
        sensors_seen = set(page.locator("#timeline-table tbody tr td:nth-child(2)").all_inner_texts())
        assert {"edge-a", "edge-b"} <= sensors_seen
        page.screenshot(path=str(ARTIFACTS / "fleet-incident.png"), full_page=True)

        page.goto(base + "/alerts?sensor=edge-c")
        page.wait_for_selector("#alert-table tbody tr", timeout=15000)
        shown = set(page.locator("#alert-table tbody tr td:nth-child(7)").all_inner_texts())
        assert shown == {"edge-c"}, shown
        assert errors == []
        browser.close()
