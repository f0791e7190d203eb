"""The one place that knows the alert record's field names (Suricata EVE compatible)."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"

# Per detector: (signature_id, signature, category, severity 1=high..3=low).
SIGNATURES: dict[str, tuple[int, str, str, int]] = {
    "port_scan": (9000001, "WIREWATCH port scan", "Attempted Information Leak", 2),
    "host_sweep": (9000002, "WIREWATCH host sweep", "Attempted Information Leak", 2),
    "distributed_scan": (9000003, "WIREWATCH distributed port scan", "Attempted Information Leak", 2),
    "syn_flood": (9000004, "WIREWATCH SYN flood", "Attempted Denial of Service", 1),
    "failed_handshake": (9000005, "WIREWATCH repeated failed TCP handshakes", "Misc activity", 3),
    "unusual_protocol": (9000006, "WIREWATCH unusual protocol or TCP flags", "Potentially Bad Traffic", 2),
    "traffic_burst": (9000007, "WIREWATCH traffic burst", "Attempted Denial of Service", 2),
    "blacklist": (9000008, "WIREWATCH blacklisted address", "Potentially Bad Traffic", 1),
    "suspicious_port": (9000009, "WIREWATCH suspicious port", "Potentially Bad Traffic", 2),
}


def format_ts(ts: float) -> str:
    """Packet time -> EVE timestamp, always UTC (+0000), microsecond precision."""
    return dt.datetime.fromtimestamp(round(float(ts), 6), tz=dt.timezone.utc).strftime(TS_FORMAT)


def flow_id(identifier: tuple[Any, ...]) -> int:
    """A stable id for "the same alert" (EVE flow_id is an integer)."""
    return zlib.crc32(repr(identifier).encode()) or 1


def alert_record(finding: Any, iface: str | None, suppressed: int) -> dict[str, Any]:
    sid, signature, category, severity = SIGNATURES.get(
        finding.type, (9000099, f"WIREWATCH {finding.type}", "Misc activity", 3))
    evidence = dict(finding.evidence)
    if suppressed:
        evidence["suppressed_since_last"] = suppressed
    return {
        "timestamp": format_ts(finding.ts),
        "event_type": "alert",
        "src_ip": finding.src_ip,
        "src_port": finding.src_port,
        "dest_ip": finding.dest_ip,
        "dest_port": finding.dest_port,
        "proto": finding.proto,
        "in_iface": iface,
        "flow_id": flow_id((finding.type,) + tuple(finding.identifier)),
        "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 1,
                  "signature": signature, "category": category, "severity": severity},
        "type": finding.type,
        "message": finding.message,
        "evidence": evidence,
    }
