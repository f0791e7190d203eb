"""The one place that knows the alert record's field names (Suricata EVE compatible)."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"

def format_ts(ts: float) -> str:
    """Packet time -> EVE timestamp, always UTC (+0000), microsecond precision."""
    return dt.datetime.fromtimestamp(round(float(ts), 6), tz=dt.UTC).strftime(TS_FORMAT)


def flow_id(identifier: tuple[Any, ...]) -> int:
    """A stable id for "the same alert" (EVE flow_id is an integer)."""
    return zlib.crc32(repr(identifier).encode()) or 1


def alert_record(finding: Any, iface: str | None, suppressed: int) -> dict[str, Any]:
    from .detect.registry import signature_of  # the detectors import this module: import late

    sig = signature_of(finding.type)
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
        "alert": {"action": "allowed", "gid": 1, "signature_id": sig.signature_id, "rev": 1,
                  "signature": sig.signature, "category": sig.category, "severity": sig.severity},
        "type": finding.type,
        "message": finding.message,
        "evidence": evidence,
    }
