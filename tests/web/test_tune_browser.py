"""A real headless Chromium (Debian's) on the tune page and the overview's near-miss panel of
a real `wirewatch dashboard`: the store holds a `wirewatch tune --db` run over every capture of
tests/corpus and the stats records of two sensors' reads of crafted captures whose sources stay
under two thresholds. Checks what is drawn (a canvas per threshold, legend and axis labels, the
value in effect as a point and a dashed line, the sources behind a point on hover and on click,
the approximation notes, the near misses with their bars) and that a hostile value stays text.
Screenshots go to var/test-artifacts/ (WIREWATCH_UPDATE_SCREENSHOTS=1: also to docs/ for README);
README's near-miss picture is taken before the hostile value is stored (a third sensor's, added
afterwards), so it shows only what sensors wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import CORPUS, cli
from crafted import many_sources_capture
from near_miss_fixtures import NEAR_MISSES, near_miss_capture, stats_event
from ports import hand_to_nobody, launch_chromium, need_chromium, nobody_store, open_page, start_dashboard

from wirewatch.store.sqlite_sink import SqliteSink

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts"
DOCS = ROOT / "docs"
TOKEN = "tune-browser-token-" + "t" * 24
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "WIREWATCH_WEB__TOKEN": TOKEN, "WIREWATCH_OUTPUT__DB": ""}
HOSTILE = '<img src=x onerror="window.__xss=1">'
RED = (0xD6, 0x27, 0x28)  # the marker's colour (#d62728)
EDGE_B = {"scanner": "192.168.7.23", "victim": "192.168.7.10", "ports": 11, "sweeper": "192.168.7.40", "hosts": 9,
          "swept": "192.168.8.{}"}  # a second sensor's near misses: 11 of 20 ports, 9 of 15 hosts


@pytest.fixture
def dashboard():
    need_chromium()
    with nobody_store("wwtune") as (work, db):
        r = cli("tune", *sorted(str(p) for p in CORPUS.glob("*.pcap")), "--blacklist", str(CORPUS / "blacklist.txt"),
                "--db", str(db), "--format", "json", "--no-progress")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        r = cli("read", str(CORPUS / "dev01_nmap_syn_top100.pcap"), "--db", str(db), "--sensor", "edge-a", "--logfile", "",
                "--quiet", "--no-progress")
        assert r.returncode == 0, r.stderr
        for sensor, capture in (("edge-a", near_miss_capture(work / "near.pcap")),  # the sensors' own near misses,
                                ("edge-b", near_miss_capture(work / "near-b.pcap", **EDGE_B))):  # from real reads
            r = cli("read", capture, "--db", str(db), "--sensor", sensor, "--logfile", "", "--quiet", "--no-progress")
            assert r.returncode == 0, r.stderr
        hand_to_nobody(db)
        with start_dashboard(ENV, "--db", str(db)) as (base, _):
            yield base, doc, db, capture


def store_hostile(db: Path, capture: str) -> None:
    """A hostile value the test writes into the running dashboard's store, as a third sensor's
    near miss (a sensor writes addresses and numbers)."""
    sink = SqliteSink(str(db))
    sink.write_event(stats_event(capture, "edge-x", [dict(NEAR_MISSES[0], src_ip="10.0.0.66", text=HOSTILE,
                                                          fraction=0.55)]))
    sink.close()
    hand_to_nobody(db)


def save(shot: bytes, name: str, readme: bool = True) -> None:
    """A screenshot into var/test-artifacts/; one README shows, also into docs/ when asked."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(shot)
    if readme and os.environ.get("WIREWATCH_UPDATE_SCREENSHOTS") == "1":
        (DOCS / name).write_bytes(shot)


def chart_state(page, canvas_id: str) -> dict:
    return page.evaluate("""id => { const c = Chart.getChart(id); return {
        datasets: c.data.datasets.map(d => ({label: d.label, data: d.data})),
        legend: c.legend.legendItems.map(i => i.text), x_title: c.options.scales.x.title.text,
        y_title: c.options.scales.y.title.text, plugins: c.config.plugins.map(p => p.id),
        marker: c.options.plugins.inEffect.value}; }""", canvas_id)


def marker_redness(page, canvas_id: str, value: float) -> float:
    """The share of pixels along the vertical at `value` inside the chart area that are the marker's red."""
    return page.evaluate("""([id, value, red]) => {
        const c = Chart.getChart(id), ctx = c.ctx, a = c.chartArea, r = c.currentDevicePixelRatio;
        const x = Math.round(c.scales.x.getPixelForValue(value) * r);
        let hits = 0, n = 0;
        for (let y = Math.ceil(a.top * r) + 2; y < Math.floor(a.bottom * r) - 2; y++, n++) {
          let best = 0;
          for (const dx of [-1, 0, 1]) {
            const p = ctx.getImageData(x + dx, y, 1, 1).data;
            if (Math.abs(p[0] - red[0]) < 40 && Math.abs(p[1] - red[1]) < 40 && Math.abs(p[2] - red[2]) < 40) best = 1;
          }
          hits += best;
        }
        return hits / n; }""", [canvas_id, value, list(RED)])


def point(page, canvas_id: str, dataset: int, index: int) -> tuple[float, float]:
    box = page.locator(f"#{canvas_id}").bounding_box()
    x, y = page.evaluate("([id, d, i]) => { const e = Chart.getChart(id).getDatasetMeta(d).data[i]; return [e.x, e.y]; }",
                         [canvas_id, dataset, index])
    return box["x"] + x, box["y"] + y


def test_tune_page_and_near_miss_panel_in_a_real_browser(dashboard):
    from playwright.sync_api import sync_playwright

    base, doc, db, capture = dashboard
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = open_page(browser, 1280, 900)
        page.goto(base + f"/login?token={TOKEN}")
        page.goto(base + "/tune")
        page.wait_for_selector("body[data-loaded='1']", timeout=15000)
        assert page.input_value("#run") == "1" and "98,239 packets" in page.inner_text("#run-info")

        # a canvas per threshold: the counts, the value in effect as a point, the dashed line and the labels
        assert page.locator("#thresholds canvas").count() == len(doc["thresholds"]) >= 8
        for t in doc["thresholds"]:
            cid = f"tune-{t['detector']}-{t['key']}"
            state = chart_state(page, cid)
            now = next(r for r in t["rows"] if r["current"])
            assert state["datasets"][0]["data"] == [{"x": r["value"], "y": r["alerts"]} for r in t["rows"]], cid
            assert state["datasets"][1]["data"] == [{"x": t["current"], "y": now["alerts"]}], cid
            assert state["legend"][0] == "alerts" and state["legend"][1].startswith(f"in effect: {t['current']:,} ("), cid
            assert state["x_title"] == f"threshold ({t['figure']})" and state["y_title"] == "alerts"
            assert "inEffect" in state["plugins"] and state["marker"] == t["current"]
            assert marker_redness(page, cid, t["current"]) > 0.4, cid  # the dashed line is on the canvas
            panel = page.locator(f"[data-threshold='{t['detector']}.{t['key']}']")
            note = panel.locator("p.approx").inner_text()
            assert note == (f"approximate: {t['approximate']}" if t["approximate"]
                            else "exact: this threshold only decides which keys are reported"), cid
            assert panel.locator(".sources .chip").all_inner_texts() == now["sources"], cid  # the value in effect's

        # port_scan at 5: seven scanners (the distributed scan's members among them); at 20 two
        scan = next(t for t in doc["thresholds"] if t["detector"] == "port_scan")
        low = scan["rows"][0]
        assert low["value"] == 5 and low["alerts"] == 7 and "10.10.0.71" in low["sources"]
        page.mouse.move(*point(page, "tune-port_scan-threshold", 0, 0))
        page.wait_for_function("() => Chart.getChart('tune-port_scan-threshold').tooltip.opacity > 0")
        tip = page.evaluate("() => { const t = Chart.getChart('tune-port_scan-threshold').tooltip; "
                            "return {title: t.title, body: t.afterBody}; }")
        assert tip["title"] == ["threshold 5"] and tip["body"] == ["sources:", *low["sources"]], tip
        page.mouse.click(*point(page, "tune-port_scan-threshold", 0, 0))
        sources = page.locator("[data-threshold='port_scan.threshold'] .sources")
        page.wait_for_function("() => document.querySelector(\"[data-threshold='port_scan.threshold'] .sources\")"
                               ".dataset.value === '5'")
        assert sources.locator("p").inner_text() == "Sources at threshold 5 (7 alerts, 7 sources)"
        assert sources.locator(".chip").all_inner_texts() == low["sources"]
        untuned = page.locator("#untuned tbody tr").all_inner_texts()
        assert [row.split("\t")[0] for row in untuned] == [u["detector"] for u in doc["untuned"]]
        page.mouse.move(*point(page, "tune-host_sweep-threshold", 0, 0))  # README shows a tooltip
        page.wait_for_function("() => Chart.getChart('tune-host_sweep-threshold').tooltip.opacity > 0")
        save(page.screenshot(clip={"x": 0, "y": 0, "width": 1280, "height": 900}), "tune.png")

        # the overview's near misses: each sensor's latest stats record, a bar per source, all text
        page.goto(base + "/")
        page.wait_for_selector("body[data-loaded='1']", timeout=15000)
        near = page.locator("#near-misses")
        edge_a = near.locator("[data-sensor='edge-a']")
        assert edge_a.locator(".near-text").all_inner_texts() == ["10.0.0.7: 12 of 15 hosts in 10 s",
                                                                  "10.0.0.9: 14 of 20 ports in 10 s"]
        assert edge_a.locator("meter").evaluate_all("ms => ms.map(m => m.value)") == [0.8, 0.7]
        assert [t.strip() for t in edge_a.locator("td.bar").all_inner_texts()] == ["80 %", "70 %"]
        edge_b = near.locator("[data-sensor='edge-b']")
        assert edge_b.locator(".near-text").all_inner_texts() == ["192.168.7.40: 9 of 15 hosts in 10 s",
                                                                  "192.168.7.23: 11 of 20 ports in 10 s"]
        save(near.screenshot(), "near-misses.png")  # README's picture: only what the two sensors wrote

        store_hostile(db, capture)  # then a hostile value: shown as text, never markup
        page.reload()
        page.wait_for_selector("[data-sensor='edge-x']", timeout=15000)
        assert near.locator("[data-sensor='edge-x'] .near-text").inner_text() == HOSTILE
        assert page.locator("#near-misses img").count() == 0 and page.evaluate("() => window.__xss") is None
        save(near.screenshot(), "near-misses-hostile.png", readme=False)  # for a person to look at; not README's

        # a run whose tables of peaks hit the cap (alerts.max_identifiers 16): the page says which counts are lower bounds
        r = cli("tune", many_sources_capture(Path(capture).parent / "many.pcap"), "--set", "alerts.max_identifiers=16",
                "--db", str(db), "--format", "json", "--no-progress")
        assert r.returncode == 0, r.stderr
        capped = json.loads(r.stdout)
        hand_to_nobody(db)
        page.goto(base + "/tune?run=2")
        page.wait_for_selector("body[data-loaded='1']", timeout=15000)
        scan = next(t for t in capped["thresholds"] if t["detector"] == "port_scan")
        assert scan["capped"] and scan["rows"][0]["at_least"]
        panel = page.locator("[data-threshold='port_scan.threshold']")
        assert panel.locator("p.capped").inner_text() == f"capped: {scan['capped']}"
        page.mouse.move(*point(page, "tune-port_scan-threshold", 0, 0))
        page.wait_for_function("() => Chart.getChart('tune-port_scan-threshold').tooltip.opacity > 0")
        lines = page.evaluate("() => Chart.getChart('tune-port_scan-threshold').tooltip.body.flatMap(b => b.lines)")
        assert lines == [f"at least {scan['rows'][0]['alerts']} alerts"], lines
        knocks = next(u for u in capped["untuned"] if u["detector"] == "suspicious_port")
        row = page.locator("#untuned tbody tr", has_text="suspicious_port").inner_text().split("\t")
        assert knocks["at_least"] and row[1] == f"at least {knocks['alerts']}"
        save(panel.screenshot(), "tune-capped.png", readme=False)
        assert errors == []
        browser.close()
