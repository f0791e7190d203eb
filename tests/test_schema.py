"""EVE records against the field types of Suricata's EVE schema (etc/schema.json in
Suricata's repository, JSON Schema draft 7).

The types below are those Suricata's schema gives for the fields wirewatch writes, stated
here by hand (no third-party file is copied in). Every object Suricata closes with
`additionalProperties: false` is closed here too, so the only keys allowed beyond
Suricata's are wirewatch's documented extensions (EXTENSION_* below, README "Alert
schema"). A null where Suricata types a field integer or string fails.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import CORPUS, run_file, run_packets
from scapy.layers.inet import IP, TCP

from wirewatch.craft import eth
from wirewatch.schema import stats_record

INT = {"type": "integer"}
STR = {"type": "string"}
ENDPOINT = {"type": "object", "additionalProperties": False, "properties": {"ip": STR, "port": INT}}

# Suricata: properties.timestamp, event_type, src_ip, ... (top level), properties.alert.*
SURICATA_ALERT = {
    "timestamp": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+[+\-]\d+$"},
    "event_type": STR, "src_ip": STR, "src_port": INT, "dest_ip": STR, "dest_port": INT,
    "proto": STR, "in_iface": STR, "flow_id": INT, "host": STR,
    "alert": {"type": "object", "additionalProperties": False, "properties": {
        "action": STR, "gid": INT, "signature_id": INT, "rev": INT, "signature": STR,
        "category": STR, "severity": INT, "source": ENDPOINT, "target": ENDPOINT}},
}
# wirewatch's additions to an alert record (README documents each)
EXTENSION_ALERT = {
    "type": STR, "message": STR, "evidence": {"type": "object"}, "enrichment": {"type": "object"},
    "escalated_from": {"type": ["string", "object", "array"]}, "update_of": {"type": "object"}, "muted": INT,
    "packets": {"type": "object"},
}
ALERT_SCHEMA = {
    "type": "object", "required": ["timestamp", "event_type", "alert", "type", "message", "evidence"],
    "additionalProperties": False, "properties": {**SURICATA_ALERT, **EXTENSION_ALERT},
}

# Suricata: properties.stats.{uptime, capture.*, decoder.*, detect.*}
DECODER_COUNTERS = ("pkts", "bytes", "invalid", "avg_pkt_size", "ipv4", "ipv6", "tcp", "udp",
                    "icmpv4", "icmpv6", "sctp", "gre", "esp")
SURICATA_STATS = {
    "uptime": INT,
    "capture": {"type": "object", "additionalProperties": False, "required": [
        "kernel_packets", "kernel_drops", "kernel_ifdrops"], "properties": {
        "kernel_packets": INT, "kernel_drops": INT, "kernel_ifdrops": INT}},
    "decoder": {"type": "object", "additionalProperties": False, "required": ["pkts", "bytes", "invalid"],
                "properties": {**dict.fromkeys(DECODER_COUNTERS, INT),
                               "errors": {"type": "object"}, "non_ip": INT}},  # errors, non_ip: wirewatch's
    "detect": {"type": "object", "additionalProperties": False, "required": ["alert"], "properties": {
        "alert": INT, "alerts_suppressed": INT,
        "alerts": {"type": "object"}, "suppressed": {"type": "object"}}},  # per-type counts: wirewatch's
}
EXTENSION_STATS = {
    "final": {"type": "boolean"}, "state": {"type": "object"}, "top_talkers": {"type": "array"},
    "muted": INT, "compiled_hot_path": {"type": "boolean"}, "timeline": {"type": "array"},
    "blacklists": {"type": "array"}, "webhook": {"type": "object"}, "store": {"type": "object"},
    "alert_manager": {"type": "object"},
    "near_misses": {"type": "array", "items": {  # the contract the dashboard's panel and /metrics read
        "type": "object", "additionalProperties": False,  # victim-keyed views have no src_ip: dest_ip names the key
        "required": ["detector", "figure", "threshold", "fraction", "unit", "window", "text"],
        "anyOf": [{"required": ["src_ip"]}, {"required": ["dest_ip"]}],
        "properties": {"detector": STR, "src_ip": STR, "dest_ip": STR, "dest_port": INT, "figure": {"type": "number"},
                       "threshold": {"type": "number"}, "fraction": {"type": "number", "minimum": 0.5, "exclusiveMaximum": 1},
                       "unit": STR, "window": {"type": "number"}, "text": STR}}},
}
STATS_SCHEMA = {
    "type": "object", "required": ["timestamp", "event_type", "stats"], "additionalProperties": False,
    "properties": {
        "timestamp": SURICATA_ALERT["timestamp"], "event_type": STR, "in_iface": STR, "host": STR,
        "stats": {"type": "object", "additionalProperties": False, "required": ["uptime", "capture", "decoder"],
                  "properties": {**SURICATA_STATS, **EXTENSION_STATS}},
    },
}

PCAPS = sorted(p["file"] for p in json.loads((CORPUS / "labels.json").read_text())["pcaps"])
VALIDATOR = jsonschema.Draft7Validator


def problems(record: dict, schema: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in VALIDATOR(schema).iter_errors(record)]


def test_the_stated_schemas_are_valid_draft7():
    VALIDATOR.check_schema(ALERT_SCHEMA)
    VALIDATOR.check_schema(STATS_SCHEMA)


@pytest.mark.parametrize("name", PCAPS)
def test_every_corpus_alert_validates(name):
    alerts, engine = run_file(str(CORPUS / name), {"detect.blacklist.files": [str(CORPUS / "blacklist.txt")],
                                                   "general.interface": "eth0"})
    for a in alerts:
        assert problems(a, ALERT_SCHEMA) == [], a
        assert a["alert"]["source"]["ip"] == a.get("src_ip") or a["type"] == "blacklist"
        if "dest_ip" in a and a["type"] != "blacklist":
            assert a["alert"]["target"]["ip"] == a["dest_ip"]
    record = stats_record(engine, "eth0", (engine.stats.packets, 0, 0), 1.5, True, timeline=True)
    assert problems(record, STATS_SCHEMA) == [], record
    dec = record["stats"]["decoder"]
    assert dec["pkts"] == engine.stats.packets == dec["ipv4"] + dec["ipv6"] + dec["non_ip"]


def test_absent_fields_are_omitted_not_null():
    """A distributed scan names no single destination port and, read from a file, no
    interface: those keys are absent (Suricata's schema types them integer and string)."""
    alerts, _ = run_file(str(CORPUS / "dev24_distributed_scan.pcap"))
    scan = next(a for a in alerts if a["type"] == "distributed_scan")
    assert "dest_port" not in scan and "src_port" not in scan and "in_iface" not in scan
    assert scan["alert"]["target"] == {"ip": scan["dest_ip"]}
    assert all(v is not None for a in alerts for v in a.values())


def test_blacklist_alert_to_a_listed_address_names_it_as_the_source(tmp_path):
    """Traffic *to* a listed host: the listed host is the attacker (alert.source), the
    local host that talked to it the target, as Suricata writes `target:src_ip` rules."""
    listed = tmp_path / "bad.txt"
    listed.write_text("203.0.113.7\n")
    pkts = [(1.0, eth(IP(src="10.0.0.5", dst="203.0.113.7") / TCP(sport=40000, dport=443, flags="S")))]
    alerts, _ = run_packets(tmp_path, pkts, {"detect.blacklist.files": [str(listed)]})
    (a,) = alerts
    assert problems(a, ALERT_SCHEMA) == []
    assert a["alert"]["source"] == {"ip": "203.0.113.7", "port": 443}
    assert a["alert"]["target"] == {"ip": "10.0.0.5", "port": 40000}
