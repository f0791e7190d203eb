"""tune_report.py: the table and JSON of `wirewatch tune`, and --baseline's suggested config:
benign captures read silent with it, attack captures still alert."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import CORPUS, cli, read_alerts

BUSY = CORPUS.parent / "corpus-busy"


def labelled(folder: Path) -> list[tuple[Path, dict]]:
    labels = json.loads((folder / "labels.json").read_text())
    return [(folder / e["file"], e) for e in labels["pcaps"] if (folder / e["file"]).exists()]


ALL = labelled(CORPUS) + (labelled(BUSY) if BUSY.exists() else [])
BENIGN = [p for p, e in ALL if not e["expected_alerts"] or e["expected_alerts"] == ["none"]]
ATTACKS = [p for p, e in ALL if e["expected_alerts"] and e["expected_alerts"] != ["none"]]


def tune_json(*args: str) -> dict:
    r = cli("tune", "--format", "json", "--no-progress", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_json_rows_count_alerts_and_name_sources_and_mark_the_value_in_effect():
    doc = tune_json(str(CORPUS / "dev01_nmap_syn_top100.pcap"), "--detector", "port_scan",
                    "--grid", "port_scan.threshold=10:120:10")
    (t,) = doc["thresholds"]
    assert (t["detector"], t["key"], t["figure"], t["current"]) == ("port_scan", "threshold", "distinct_ports", 20)
    rows = {r["value"]: r for r in t["rows"]}
    assert rows[20]["current"] and rows[20]["alerts"] == 1 and rows[20]["sources"] == ["10.10.0.66"]
    assert rows[120]["alerts"] == 0  # the scan probed 100 ports
    counts = [r["alerts"] for r in t["rows"]]
    assert counts == sorted(counts, reverse=True)
    assert doc["packets"] > 0 and t["approximate"]


def test_table_marks_the_value_in_effect_and_says_where_it_is_approximate():
    r = cli("tune", str(CORPUS / "dev10_hping3_syn_flood.pcap"), "--detector", "syn_flood", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "syn_flood.threshold" in r.stdout and "approximate:" in r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith("*"))
    assert line.split()[1:3] == ["400", "1"] and "10.10.0.66" in line


def test_baseline_suggestion_keeps_benign_silent_and_attacks_alerting(tmp_path):
    args = [x for p in BENIGN for x in ("--baseline", str(p))]
    doc = tune_json(*args, "--blacklist", str(CORPUS / "blacklist.txt"))
    base = doc["baseline"]
    assert base["margin"] == 1.25
    for s in base["suggestions"]:
        if s["peak"] is not None:
            assert s["suggested"] > s["peak"] * 1.25 - 1
    conf = tmp_path / "tuned.toml"
    conf.write_text(base["config"])
    assert "[detect.port_scan]" in base["config"]
    for path in BENIGN:
        log = tmp_path / f"{path.name}.json"
        r = cli("read", str(path), "--config", str(conf), "--logfile", str(log), "--quiet",
                "--blacklist", str(path.parent / "blacklist.txt"))
        assert r.returncode == 0, r.stderr
        assert read_alerts(log) == [], path.name
    silent = []
    for path in ATTACKS:
        log = tmp_path / f"{path.name}.json"
        r = cli("read", str(path), "--config", str(conf), "--logfile", str(log), "--quiet",
                "--blacklist", str(path.parent / "blacklist.txt"))
        assert r.returncode == 0, r.stderr
        if not read_alerts(log):
            silent.append(path.name)
    assert silent == []


def test_tune_needs_a_capture():
    r = cli("tune")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "CAPTURE" in r.stderr
