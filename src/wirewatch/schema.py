"""The one place that knows the alert and stats records' field names (Suricata EVE compatible).

Records validate against Suricata's EVE schema (etc/schema.json): a field wirewatch does
not know is omitted, never written as null (typed ingest pipelines reject null where the
schema says integer or string). wirewatch's own keys (`type`, `message`, `evidence`,
`enrichment`, ...) are the only additions; README lists them.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the engine builds records with this module: a type only
    from .engine import Engine

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"


def format_ts(ts: float) -> str:
    """Packet time -> EVE timestamp, always UTC (+0000), microsecond precision."""
    return dt.datetime.fromtimestamp(round(float(ts), 6), tz=dt.UTC).strftime(TS_FORMAT)


def format_ts_many(ts: Any) -> list[str]:
    """format_ts over an array of packet times (same text, one numpy call)."""
    us = np.round(np.asarray(ts, np.float64) * 1e6).astype("datetime64[us]")
    return [t + "+0000" for t in np.datetime_as_string(us, unit="us").tolist()]


def flow_id(identifier: tuple[Any, ...]) -> int:
    """A stable id for "the same alert" (EVE flow_id is an integer)."""
    return zlib.crc32(repr(identifier).encode()) or 1


def present(**fields: Any) -> dict[str, Any]:
    """The fields that have a value: EVE omits what is unknown instead of writing null."""
    return {k: v for k, v in fields.items() if v is not None}


def _endpoint(ip: str | None, port: int | None) -> dict[str, Any] | None:
    return present(ip=ip, port=port) if ip is not None else None


def severity_of(finding: Any) -> int:
    """The finding's own severity if it set one, else its detector's (1 = high .. 3 = low):
    the signature's, raised by the rises its SPEC declares that the evidence meets."""
    from .detect.registry import severity_for  # the detectors import this module: import late

    own = getattr(finding, "severity", None)
    return int(own) if own else severity_for(finding.type, finding.evidence)


def alert_record(finding: Any, iface: str | None, suppressed: int,
                 escalated_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """`escalated_from` (present only on an escalation) names the earlier alert of the same
    identifier (its flow_id, timestamp, message and main figure) that this one outgrew."""
    from .detect.registry import signature_of  # the detectors import this module: import late

    sig = signature_of(finding.type)
    evidence = dict(finding.evidence)
    if suppressed:
        evidence["suppressed_since_last"] = suppressed
    src = _endpoint(finding.src_ip, finding.src_port)
    dest = _endpoint(finding.dest_ip, finding.dest_port)
    # attacker and victim, as Suricata writes them for a rule with `target:dest_ip` (or src_ip)
    source, target = (dest, src) if getattr(finding, "target", "dest") == "src" else (src, dest)
    alert = {"action": "allowed", "gid": 1, "signature_id": sig.signature_id, "rev": 1,
             "signature": sig.signature, "category": sig.category, "severity": severity_of(finding),
             **present(source=source, target=target)}
    record = {
        "timestamp": format_ts(finding.ts),
        "event_type": "alert",
        **present(src_ip=finding.src_ip, src_port=finding.src_port, dest_ip=finding.dest_ip,
                  dest_port=finding.dest_port, proto=finding.proto, in_iface=iface or None),
        "flow_id": flow_id((finding.type,) + tuple(finding.identifier)),
        "alert": alert,
        "type": finding.type,
        "message": finding.message,
        "evidence": evidence,
    }
    if escalated_from is not None:
        record["escalated_from"] = escalated_from
    return record


def stats_record(engine: Engine, iface: str | None, kernel: tuple[int, int, int], uptime: float,
                 final: bool, timeline: bool = False) -> dict[str, Any]:
    """An EVE `stats` event: Suricata's names and types (stats.capture.kernel_*,
    stats.decoder.*, stats.detect.alert) where Suricata has the counter, wirewatch's
    documented extensions beside them; `timeline` adds packets per second of packet time
    (an analysed capture has no earlier events to take rates from)."""
    s = engine.summary()
    recv, drop, ifdrop = kernel
    pkts = s["packets"]
    record: dict[str, Any] = {
        "timestamp": format_ts(time.time()), "event_type": "stats", "host": engine.sensor,
        **present(in_iface=iface or None),
        "stats": {
            "uptime": int(uptime), "final": final,
            "capture": {"kernel_packets": recv, "kernel_drops": drop, "kernel_ifdrops": ifdrop},
            "decoder": {"pkts": pkts, "bytes": s["bytes"], "invalid": sum(s["decode_errors"].values()),
                        "avg_pkt_size": s["bytes"] // pkts if pkts else 0, **engine.layers.decoder_stats(),
                        "errors": s["decode_errors"], "non_ip": s["non_ip_frames"]},
            "detect": {"alert": sum(s["alerts"].values()), "alerts_suppressed": sum(s["suppressed"].values()),
                       "alerts": s["alerts"], "suppressed": s["suppressed"]},
            "alert_manager": s["alert_manager"],  # escalations, storms, correlated probes
            "state": s["detector_state"], "top_talkers": s["top_sources"][:10], "muted": s["muted"],
            "compiled_hot_path": s["compiled_hot_path"], "store": s["store"],
            "blacklists": s["blacklists"], "near_misses": engine.near_misses(),
        },
    }
    for sink in engine.sinks:  # a sink with counters of its own (the webhook's sent / failed / dropped)
        counters = getattr(sink, "counters", None)
        if counters is not None:
            record["stats"][sink.name] = counters()
    if timeline:
        record["stats"]["timeline"] = engine.timeline.rates()
    return record
