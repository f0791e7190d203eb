"""traffic_burst: one-way UDP to a listener whose datagrams vary in size is an application's
messages (syslog, metrics, telemetry to a collector, which never answers), not a flood; copies of
one datagram are a flood, and so is any stream the destination refuses with ICMP unreachable.
A stream to a multicast group or the broadcast address floods no host."""

from __future__ import annotations

import pytest
from conftest import run_packets
from crafted import ADDRS, T0, host, ip, types
from scapy.layers.inet import ICMP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach
from scapy.layers.l2 import Ether
from scapy.packet import Raw

COLLECTOR = 0  # host(v, 0)


def log_line(i: int, varying: bool) -> bytes:
    """A syslog message; `varying`: its length follows its content (5 to 40 words), else one
    fixed-size message repeated, as a flood tool sends."""
    words = 5 + (i * 7) % 36 if varying else 12
    return b"<134>Dec  3 10:00:00 web01 app[812]: " + b" ".join(b"word%d" % (w % 10) for w in range(words))


def log_stream(v: int, src: str, n: int, varying: bool, t0: float = T0, gap: float = 0.002, refuse_every: int = 0,
               moving: bool = False):
    """n datagrams from src to the collector's port 514; every `refuse_every`th draws an ICMP port
    unreachable (the port is closed) quoting it; `moving`: a source port of its own each, as a
    flood tool sends (one socket's copies of one datagram are a stream: test_traffic_burst_stream.py)."""
    dst = host(v, COLLECTOR)
    out = []
    for i in range(n):
        t = t0 + i * gap
        dgram = ip(v, src, dst) / UDP(sport=20000 + i if moving else 41000, dport=514) / Raw(log_line(i, varying))
        out.append((t, Ether(dst="02:00:00:00:00:02") / dgram))
        if refuse_every and i % refuse_every == 0:
            err = ICMP(type=3, code=3) if v == 4 else ICMPv6DestUnreach(code=4)
            out.append((t + 0.0001, Ether(dst="02:00:00:00:00:02") / ip(v, dst, src) / err / dgram))
    return out


@pytest.mark.parametrize("v", [4, 6])
def test_log_messages_to_a_collector_are_not_a_flood(tmp_path, v):
    """2,000 messages in 4 s from one host: varying sizes are silent, one size repeated from a new
    source port each is a UDP flood of the sender, and varying sizes the destination refuses (no
    listener) are one too."""
    src = ADDRS[v][0]
    assert "traffic_burst" not in types(run_packets(tmp_path, log_stream(v, src, 2000, varying=True))[0])
    for packets in (log_stream(v, src, 2000, varying=False, moving=True),
                    log_stream(v, src, 2000, varying=True, refuse_every=200)):
        fired = types(run_packets(tmp_path, packets)[0])["traffic_burst"]
        assert [(a["src_ip"], a["dest_ip"], a["evidence"]["kind"]) for a in fired] == [(src, host(v, COLLECTOR), "UDP flood")]
        assert fired[0]["evidence"]["packets"] >= 1000  # the threshold


def test_many_hosts_logging_to_one_collector_are_not_a_flood(tmp_path):
    """12 hosts each send 100 messages (each pair below the threshold, 1,200 together): the
    many-sources view stays silent when the sizes vary, and names the collector when each host
    sends copies of one datagram."""
    def senders(varying: bool):
        return sorted((p for k in range(12) for p in log_stream(4, f"10.1.7.{k + 1}", 100, varying, T0 + k * 0.0001,
                                                                 gap=0.03)), key=lambda p: p[0])
    assert "traffic_burst" not in types(run_packets(tmp_path, senders(True))[0])
    fired = types(run_packets(tmp_path, senders(False))[0])["traffic_burst"]
    assert [(a.get("src_ip"), a["dest_ip"]) for a in fired] == [(None, host(4, COLLECTOR))]
    assert fired[0]["evidence"]["distinct_sources"] == 12


@pytest.mark.parametrize("v,group", [(4, "239.1.1.1"), (4, "255.255.255.255"), (6, "ff15::1234")])
def test_a_stream_to_a_group_is_not_a_flood(tmp_path, v, group):
    """2,000 datagrams of 1,316 bytes (MPEG-TS over UDP) at 400/s to a group: silent, from one
    sender and from 12 (recorded: a video stream to 239.1.1.1:5004 was a UDP flood of the
    sender); the same datagrams to one host from a new source port each are a flood (from one
    socket, a stream: test_traffic_burst_stream.py)."""
    def stream(src: str, dst: str, n: int, t0: float = T0, moving: bool = False):
        return [(t0 + i * 0.0025, Ether(dst="01:00:5e:01:01:01") / ip(v, src, dst) / UDP(sport=20000 + i if moving else 40000, dport=5004)
                 / Raw(b"\x47" + bytes(1315))) for i in range(n)]
    assert "traffic_burst" not in types(run_packets(tmp_path, stream(ADDRS[v][0], group, 2000))[0])
    many = sorted((p for k in range(12) for p in stream(host(v, 20 + k), group, 100, T0 + k * 0.0001)), key=lambda p: p[0])
    assert "traffic_burst" not in types(run_packets(tmp_path, many)[0])
    fired = types(run_packets(tmp_path, stream(ADDRS[v][0], host(v, COLLECTOR), 2000, moving=True))[0])["traffic_burst"]
    assert [(a["src_ip"], a["dest_ip"]) for a in fired] == [(ADDRS[v][0], host(v, COLLECTOR))]
