"""The strict judgement of a labelled corpus capture (the rules of the shared score.py
--strict, see tests/corpus/README.md and tests/corpus-busy/README.md for the labels).

A capture passes when every expected category fires attributed to a labelled attacker or
victim; nothing outside expected + acceptable fires; no alert accuses an address that is not
a labelled attacker (floods from many sources accuse their victim; blacklist alerts the
listed address); and each `evidence_min` holds for some attributed alert.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

FLOODS = {"syn_flood", "traffic_burst"}


def norm(addr) -> str:
    try:
        return ipaddress.ip_address(str(addr)).compressed
    except ValueError:
        return str(addr)


def addresses(labels) -> set[str]:
    """Label addresses in one spelling; "a.b.c.X-Y" is that range of last octets."""
    out = set()
    for a in labels:
        m = re.fullmatch(r"(\d+\.\d+\.\d+\.)(\d+)-(\d+)", str(a))
        out |= {norm(m[1] + str(i)) for i in range(int(m[2]), int(m[3]) + 1)} if m else {norm(a)}
    return out


def blocklisted(path: Path) -> list:
    nets = []
    for line in path.read_text().splitlines() if path.exists() else []:
        word = line.split("#")[0].split(";")[0].strip()
        if word:
            nets.append(ipaddress.ip_network(word, strict=False))
    return nets


def _many_sources(alert: dict) -> bool:
    n = (alert.get("evidence") or {}).get("distinct_sources")
    return alert.get("src_ip") is None or (isinstance(n, (int, float)) and n > 1)


def _accused(alert: dict, spoofed: bool) -> tuple[str, list[str]]:
    t, ev = alert.get("type"), alert.get("evidence") or {}
    if t in FLOODS and _many_sources(alert):
        return "victim", [norm(alert.get("dest_ip"))]
    if t in FLOODS and spoofed:
        return "attacker", []
    if t == "blacklist" and ev.get("address"):
        return "attacker", [norm(ev["address"])]
    who = {norm(alert.get("src_ip"))}
    if t == "distributed_scan":
        who |= {norm(m.get("src_ip")) for m in ev.get("members", []) if isinstance(m, dict)}
    return "attacker", sorted(who)


def _lookup(evidence: dict, key: str):
    v = evidence
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    if isinstance(v, (list, dict)):
        return len(v)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def problems(entry: dict, alerts: list[dict], nets: list) -> list[str]:
    """Everything wrong with these alerts for this labelled capture (empty: it passes)."""
    expected = [c for c in entry["expected_alerts"] if c != "none"]
    allowed = set(expected) | set(entry.get("acceptable_alerts", []))
    attackers = addresses(a for a in entry.get("attacker_ips", []) if a != "spoofed-random")
    accusable = attackers | addresses(entry.get("compromised_ips", []))
    victims = addresses(entry.get("victim_ips", []))
    benign = addresses(entry.get("benign_hosts", []))
    spoofed = "spoofed-random" in entry.get("attacker_ips", []) or not (attackers | victims)
    by_type: dict[str, list[dict]] = {}
    for a in alerts:
        by_type.setdefault(a["type"], []).append(a)

    def attributed(t: str) -> list[dict]:
        return [a for a in by_type.get(t, []) if spoofed
                or {norm(a.get("src_ip")), norm(a.get("dest_ip"))} & (attackers | victims)]

    out = [f"missing {t}" for t in expected if not attributed(t)]
    out += [f"unexpected {t}" for t in sorted(set(by_type) - allowed)]
    for a in alerts:
        role, who = _accused(a, spoofed)
        for w in who:
            if role == "victim" and w not in victims:
                out.append(f"{a['type']} names victim {w}, not labelled")
            elif a["type"] == "blacklist" and any(ipaddress.ip_address(w) in n for n in nets
                                                  if ipaddress.ip_address(w).version == n.version):
                continue
            elif role == "attacker" and (w in benign or w not in accusable):
                out.append(f"{a['type']} accuses {w}")
    for t, mins in (entry.get("evidence_min") or {}).items():
        for key, need in mins.items():
            vals = [v for v in (_lookup(a.get("evidence") or {}, key) for a in attributed(t)) if v is not None]
            if not vals or max(vals) < need:
                out.append(f"{t}.{key} = {max(vals) if vals else 'absent'} < {need}")
    return out
