"""Every labelled corpus pcap through `wirewatch read` with the default config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS, cli, read_alerts
from corpus_rules import blocklisted, problems

BUSY = CORPUS.parent / "corpus-busy"  # a subset of the busy-network captures (issue 10), .pcap.xz


def entries(folder: Path) -> list[tuple[Path, dict]]:
    """(folder, label entry) for every labelled capture the folder carries."""
    labels = json.loads((folder / "labels.json").read_text())
    return [(folder, e) for e in labels["pcaps"] if (folder / e["file"]).exists()]


CAPTURES = entries(CORPUS) + entries(BUSY)


def test_the_busy_captures_are_carried():
    assert len(entries(BUSY)) == 22  # all of them


@pytest.mark.parametrize(("folder", "entry"), CAPTURES, ids=[e["file"] for _, e in CAPTURES])
def test_capture_raises_exactly_what_labels_say(tmp_path, folder, entry):
    """The strict rules of the shared scorer (corpus_rules.py), with the default configuration."""
    log = tmp_path / "alerts.json"
    r = cli("read", str(folder / entry["file"]), "--logfile", str(log), "--blacklist", str(folder / "blacklist.txt"),
            "--format", "json")
    assert r.returncode == 0, r.stderr
    assert "(continuing)" not in r.stderr, r.stderr  # a detector that raised is logged and skipped
    alerts = [a for a in read_alerts(log) if a.get("event_type", "alert") == "alert"]
    if "none" in entry["expected_alerts"]:
        assert alerts == []
    assert problems(entry, alerts, blocklisted(folder / "blacklist.txt")) == []
    assert json.loads(r.stdout)["packets"] == entry["packet_count"]


def test_mixed_pcap_blames_only_the_attacker(tmp_path):
    log = tmp_path / "a.json"
    cli("read", str(CORPUS / "dev23_mixed_http_dns_with_synscan.pcap"), "--logfile", str(log), "--quiet")
    assert {a["src_ip"] for a in read_alerts(log)} == {"10.10.0.66"}


def test_same_file_twice_gives_identical_alert_files(tmp_path):
    outs = []
    for i in range(2):
        log = tmp_path / f"run{i}.json"
        r = cli("read", *(str(CORPUS / n) for n in ("dev01_nmap_syn_top100.pcap", "dev10_hping3_syn_flood.pcap",
                                                    "dev24_distributed_scan.pcap", "dev18_blacklist_src.pcap")),
                "--blacklist", str(CORPUS / "blacklist.txt"), "--logfile", str(log), "--quiet")
        assert r.returncode == 0
        *alerts, stats = log.read_bytes().splitlines(keepends=True)  # the final stats event has wall-clock fields
        assert json.loads(stats)["event_type"] == "stats"
        outs.append((b"".join(alerts), json.loads(stats)["stats"]["near_misses"]))
    assert outs[0] == outs[1] and len(outs[0][0]) > 0


def test_evidence_is_enough_to_check_an_alert(tmp_path):
    log = tmp_path / "a.json"
    cli("read", str(CORPUS / "dev01_nmap_syn_top100.pcap"), "--logfile", str(log), "--quiet")
    scan = [a for a in read_alerts(log) if a["type"] == "port_scan"][0]
    ev = scan["evidence"]
    assert ev["distinct_ports"] >= ev["threshold"] == 20
    assert ev["answers"]["closed"] > 50 and ev["answers"]["open"] >= 1
    assert len(ev["sample_ports"]) == 20 and ev["first_seen"] < ev["last_seen"]
    assert scan["alert"]["signature_id"] == 9000001 and scan["event_type"] == "alert"
    assert scan["message"] == "Possible port scan detected from 10.10.0.66"
