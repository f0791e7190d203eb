"""Every labelled corpus pcap through `wirewatch read` with the default config."""

from __future__ import annotations

import json

import pytest
from conftest import CORPUS, cli, read_alerts

LABELS = json.loads((CORPUS / "labels.json").read_text())
PCAPS = {p["file"]: p for p in LABELS["pcaps"]}


def blamed(alert: dict) -> set[str]:
    """Addresses an alert names as responsible: source, or victim for floods/distributed scans."""
    names = {alert["src_ip"], alert["dest_ip"]}
    names |= {m["src_ip"] for m in alert["evidence"].get("members", [])}
    return {n for n in names if n}


@pytest.mark.parametrize("name", sorted(PCAPS))
def test_corpus_pcap_raises_what_labels_say(tmp_path, name):
    entry = PCAPS[name]
    log = tmp_path / "alerts.json"
    r = cli("read", str(CORPUS / name), "--logfile", str(log), "--blacklist", str(CORPUS / "blacklist.txt"),
            "--format", "json")
    assert r.returncode == 0, r.stderr
    assert "(continuing)" not in r.stderr, r.stderr  # a detector that raised is logged and skipped
    alerts = read_alerts(log)
    fired = {a["type"] for a in alerts}
    expected = set(entry["expected_alerts"]) - {"none"}
    allowed = expected | set(entry["acceptable_alerts"])
    assert expected <= fired, f"missing {expected - fired}"
    assert fired <= allowed, f"unexpected {fired - allowed}"
    if "none" in entry["expected_alerts"]:
        assert alerts == []
    culprits = set(entry["attacker_ips"]) | set(entry["victim_ips"])
    for a in alerts:
        if a["type"] in expected:
            assert blamed(a) & culprits, a
    attackers = set(entry["attacker_ips"])
    for t in expected:
        names = set().union(*(blamed(a) for a in alerts if a["type"] == t))
        target = attackers if t not in ("syn_flood",) else attackers | set(entry["victim_ips"])
        assert names & target, f"{t} does not name the labelled attacker/victim"
    summary = json.loads(r.stdout)
    assert summary["packets"] == entry["packet_count"]


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
        outs.append(log.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 0


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
