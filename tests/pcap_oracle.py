"""tshark's view of a capture, the oracle the alert-packet tests compare with: every frame's
number, time and endpoints as Wireshark dissects them, and "the alert's packets" worked out
from that (README "wirewatch extract": source to destination, proto and dest_port when the
alert has them, answers too for conversations, first_seen..last_seen)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest

FIELDS = ("frame.number", "frame.time_epoch", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "ipv6.nxt",
          "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport")
PROTOS = {"TCP": 6, "UDP": 17, "ICMP": 1, "IPv6-ICMP": 58}
CONVERSATION = {"port_scan", "host_sweep", "syn_flood", "failed_handshake", "suspicious_port", "blacklist",
                "traffic_burst"}


def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is needed (.ci/run installs it: wireshark-common / tshark)")
    return path


def frames(path: str) -> list[dict]:
    """Every frame of the capture: number, ts, src, dst, proto, sport, dport (None where absent);
    of an ICMP error's two IP headers, the outer one."""
    cmd = [tshark(), "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        v = line.split("\t")
        v += [""] * (len(FIELDS) - len(v))
        num = lambda s: int(s) if s else None  # noqa: E731
        rows.append({"frame": int(v[0]), "ts": float(v[1]), "src": v[2] or v[4] or None, "dst": v[3] or v[5] or None,
                     "proto": num(v[6]) if v[6] else num(v[7]), "sport": num(v[8]) or num(v[10]),
                     "dport": num(v[9]) or num(v[11])})
    return rows


def _epoch(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def alert_frames(rows: list[dict], alert: dict, slack: float = 1e-6) -> list[dict]:
    """The alert's packets by tshark's dissection of the capture, in file order (first_seen and
    last_seen are microseconds: `slack` around them)."""
    lo, hi = _epoch(alert["evidence"]["first_seen"]), _epoch(alert["evidence"]["last_seen"])
    a, v, port = alert.get("src_ip"), alert.get("dest_ip"), alert.get("dest_port")
    proto = PROTOS.get(alert.get("proto", ""))
    out = []
    for r in rows:
        if not lo - slack <= r["ts"] <= hi + slack:
            continue
        fwd = (a is None or r["src"] == a) and (v is None or r["dst"] == v) \
            and (proto is None or r["proto"] == proto) and (port is None or r["dport"] == port)
        rev = (alert["type"] in CONVERSATION and (a is None or r["dst"] == a) and (v is None or r["src"] == v)
               and (proto is None or r["proto"] in (proto, 1, 58)) and (port is None or r["sport"] in (None, port)))
        if fwd or rev:
            out.append(r)
    return out


def same_packets(got: list[dict], want: list[dict], tolerance: float = 1e-6) -> None:
    """Addresses, ports and time stamps (to the microsecond, or `tolerance`) equal, frame for frame."""
    key = lambda r: (r["src"], r["dst"], r["proto"], r["sport"], r["dport"])  # noqa: E731
    assert [key(r) for r in got] == [key(r) for r in want]
    diffs = [round(g["ts"] - w["ts"], 7) for g, w in zip(got, want)]
    assert all(abs(d) <= tolerance for d in diffs), sorted(set(diffs))[:20]


def without_file(alerts: list[dict]) -> list[dict]:
    """Alerts as they compare across copies of one capture (plain, compressed, standard input):
    the same frames, but each names the file it was read from (`packets.file`, with that file's
    `size` and `mtime_ns`, or `reopenable: false` for a pipe)."""
    out = []
    for a in alerts:
        a = dict(a)
        if isinstance(a.get("packets"), dict):
            a["packets"] = {k: v for k, v in a["packets"].items() if k not in ("file", "size", "mtime_ns", "reopenable")}
        out.append(a)
    return out
