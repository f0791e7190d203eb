"""HandshakeTracker: each attempt ends completed, refused (RST), unreachable (ICMP) or timed out
(on packet time, or on the clock when the wire is quiet); its table stays capped."""

from __future__ import annotations

import numpy as np
from conftest import decode_file
from crafted import T0, many, syn
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Ether

from wirewatch.craft import write_pcap
from wirewatch.detect.classify.handshakes import (
    COMPLETED,
    FAILED_ICMP,
    FAILED_RST,
    FAILED_TIMEOUT,
    HandshakeTracker,
)

C, S = "10.5.0.7", "10.5.0.1"


def pkt(t, layer):
    return (t, Ether(dst="02:00:00:00:00:02") / layer)


def test_every_outcome_once_per_attempt(tmp_path):
    probe = IP(src=C, dst=S) / TCP(sport=3002, dport=443, flags="S")
    pkts = [syn(4, C, S, 3000, 80, T0), pkt(T0 + 0.01, IP(src=S, dst=C) / TCP(sport=80, dport=3000, flags="SA")),
            pkt(T0 + 0.02, IP(src=C, dst=S) / TCP(sport=3000, dport=80, flags="A")),
            syn(4, C, S, 3001, 81, T0 + 0.1), pkt(T0 + 0.11, IP(src=S, dst=C) / TCP(sport=81, dport=3001, flags="RA")),
            pkt(T0 + 0.2, probe), pkt(T0 + 0.21, IP(src="10.5.0.254", dst=C) / ICMP(type=3, code=13) / probe),
            syn(4, C, S, 3003, 82, T0 + 0.3), syn(4, C, S, 3004, 83, T0 + 10)]  # 82 unanswered; 83 moves time on
    b = decode_file(write_pcap(str(tmp_path / "h.pcap"), pkts))
    tracker = HandshakeTracker(timeout=3.0, capacity=64)
    first = tracker.observe(b.select(slice(0, 8)))
    assert sorted(zip(first.outcome.tolist(), first.dport.tolist())) == [(COMPLETED, 80), (FAILED_RST, 81),
                                                                         (FAILED_ICMP, 443)]
    later = tracker.observe(b.select(slice(8, None)))
    assert later.outcome.tolist() == [FAILED_TIMEOUT] and later.dport.tolist() == [82]
    assert later.ts.tolist() == [T0 + 0.3 + 3.0]  # failed when its timeout ran out, in packet time
    assert tracker.stats()["handshakes_completed"] == 1 and tracker.stats()["handshakes_timeout"] == 1


def test_the_clock_times_out_attempts_on_a_quiet_wire(tmp_path):
    b = decode_file(write_pcap(str(tmp_path / "q.pcap"), [syn(4, C, S, 3000, 22, T0)]))
    tracker = HandshakeTracker(timeout=3.0, capacity=64)
    assert len(tracker.observe(b)) == 0
    assert len(tracker.tick(T0 + 1.0)) == 0
    assert tracker.tick(T0 + 5.0).outcome.tolist() == [FAILED_TIMEOUT]


def test_table_stays_capped_under_ten_times_its_capacity(tmp_path):
    pkts = [syn(4, many(4, i), S, 1024 + i, 80, T0 + i * 0.001) for i in range(640)]
    b = decode_file(write_pcap(str(tmp_path / "f.pcap"), pkts))
    tracker = HandshakeTracker(timeout=3.0, capacity=64)
    for start in range(0, 640, 64):
        tracker.observe(b.select(np.arange(start, start + 64)))
    st = tracker.stats()
    assert st["handshakes_tracked"] <= 64 and st["handshakes_evicted"] >= 640 - 64


def test_each_completed_handshake_carries_its_own_time_not_the_batchs_latest(tmp_path):
    """Two connections to watched ports in one batch, 0.3 s apart: each alert's last_seen is a
    packet of its own connection (it was the batch's latest packet: the review found a
    suspicious_port alert stamped with an unrelated ACK, and its pcap download empty)."""
    import json

    from conftest import cli

    from wirewatch.schema import format_ts

    frames = []
    for t, src, port in ((T0, "10.1.0.5", 4444), (T0 + 0.3, "10.1.0.6", 6667)):
        c, s = IP(src=src, dst="10.1.0.2"), IP(src="10.1.0.2", dst=src)
        frames += [(t, Ether() / c / TCP(sport=40000, dport=port, flags="S", seq=1)),
                   (t + 0.001, Ether() / s / TCP(sport=port, dport=40000, flags="SA", seq=7, ack=2)),
                   (t + 0.002, Ether() / c / TCP(sport=40000, dport=port, flags="A", seq=2, ack=8))]
    frames.append((T0 + 0.6, Ether() / IP(src="10.1.0.9", dst="10.1.0.3") / TCP(sport=5555, dport=80, flags="A")))
    pcap = tmp_path / "two.pcap"
    write_pcap(str(pcap), frames)
    log = tmp_path / "a.json"
    assert cli("read", str(pcap), "--logfile", str(log), "--db", "", "--quiet").returncode == 0
    alerts = {a["dest_port"]: a for a in map(json.loads, log.read_text().splitlines()) if a.get("type") == "suspicious_port"}
    b = decode_file(str(pcap))
    for port in (4444, 6667):
        own = b.ts[(b.dport == port) | (b.sport == port)]
        last = alerts[port]["evidence"]["last_seen"]
        assert last in {format_ts(t) for t in own}, (port, last)
        assert alerts[port]["packets"]["matched"] >= 1


def test_finished_attempts_leave_with_their_batch_and_their_rows_time_out_only_when_reused(tmp_path):
    """An attempt leaves the table with the batch that decided it (completed, refused, timed
    out); sweeps read the columns up to the high-water mark, and a freed row times nothing
    out until a new attempt takes it."""
    batches = [
        [syn(4, C, S, 3000, 80, T0), pkt(T0 + 0.01, IP(src=S, dst=C) / TCP(sport=80, dport=3000, flags="SA")),
         pkt(T0 + 0.02, IP(src=C, dst=S) / TCP(sport=3000, dport=80, flags="A")),
         syn(4, C, S, 3001, 81, T0 + 0.1), pkt(T0 + 0.11, IP(src=S, dst=C) / TCP(sport=81, dport=3001, flags="RA")),
         syn(4, C, S, 3002, 82, T0 + 0.2)],
        [syn(4, C, S, 3003, 83, T0 + 1.5)],  # into a row the first batch freed (80 or 81)
        [syn(4, C, S, 3004, 84, T0 + 2.0), syn(4, C, S, 3005, 85, T0 + 2.1)],
        [syn(4, C, S, 3006, 86, T0 + 10.0)],  # sweep: 82-85 time out
        [syn(4, C, S, 3007, 87, T0 + 20.0)],  # sweep: 86 times out
        [syn(4, C, S, 3008, 88, T0 + 30.0)],  # sweep over 82-85's free rows: 87 only
    ]
    tracker = HandshakeTracker(timeout=3.0, capacity=64)
    timed_out = []
    for i, pkts in enumerate(batches):
        ev = tracker.observe(decode_file(write_pcap(str(tmp_path / f"{i}.pcap"), pkts)))
        timed_out.append(sorted(ev.dport[ev.outcome == FAILED_TIMEOUT].tolist()))
    assert timed_out == [[], [], [], [82, 83, 84, 85], [86], [87]]
    assert tracker.stats()["handshakes_timeout"] == 6
    # 87 left with the sweep that timed it out: 88 alone is still undecided
    assert tracker.stats()["handshakes_tracked"] == 1
