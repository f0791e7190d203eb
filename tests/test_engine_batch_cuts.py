"""The same packets give the same alerts, wherever the reader cut them into batches.

A capture read with any batch size (the reads and `general.batch_size` alike), mapped or
streamed (a compressed copy; a stream cut into small chunks, whose ends cut batches too)
must give the same alert records, field for field: type, source, timestamp, evidence.
The engine decides where a detector looks at the packets (its time slices, and pieces of
`slice_packets` packets of a long one) from packet times and order alone (engine.process).
Before that, a slice ended at the batch that overflowed COALESCE_BATCHES x batch_size rows:
mixed-4x.pcap and mixed-4x.pcap.zst gave different syn_flood evidence, and a batch size of 7
turned dev01's one port_scan into two.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS
from scapy.layers.inet import ICMP, IP, TCP, UDP

from wirewatch import config
from wirewatch.capture.pcapfile import DEFAULT_BATCH, RawBatch, read_batches
from wirewatch.capture.sources import decompressed, stream_batches
from wirewatch.craft import BASE_TS, eth, write_pcap
from wirewatch.engine import Engine
from wirewatch.sinks import SinkBase
from wirewatch.slices import SLICE_PACKETS

BUSY = CORPUS.parent / "corpus-busy"
SMALL_CHUNK = 64 * 1024  # bytes per refill of the chunked stream: its chunk ends cut batches


class Collect(SinkBase):
    name = "collect"

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def write(self, alerts: list[dict[str, Any]]) -> None:
        self.alerts += alerts

    def close(self) -> None:
        pass


def batches(path: Path, reader: str, size: int) -> Iterator[RawBatch]:
    """mapped: the plain file mapped; stream: read_batches of its gzip or xz copy; chunked: the
    plain file streamed SMALL_CHUNK bytes at a time."""
    if reader == "chunked":
        with open(path, "rb") as fh:
            head = fh.read(6)
            yield from stream_batches(path.name, decompressed(path.name, head, fh), size, chunk=SMALL_CHUNK)
    else:
        yield from read_batches(str(path), size)


def alerts_of(path: Path, reader: str, size: int, slice_packets: int = SLICE_PACKETS,
              blacklist: Path | None = None, ring: int | None = None) -> list[dict[str, Any]]:
    """The alerts as `read` gives them, each with its packets' frame numbers (`packets`, from
    the packet ring: output.packet_ring `ring` packets); the file's name, size and time are
    left out of `packets` (the copies differ in those)."""
    ov = [("general", "batch_size", size, "test"), ("general", "sensor", "cuts", "test")]
    if blacklist is not None:
        ov.append(("detect.blacklist", "files", [str(blacklist)], "test"))
    if ring is not None:
        ov.append(("output", "packet_ring", ring, "test"))
    sink = Collect()
    engine = Engine(config.build(ov), sinks=[sink])
    engine.slice_packets = slice_packets
    engine.begin_file(str(path))
    for raw in batches(path, reader, size):
        engine.feed(raw)
    engine.finish()  # the run-end updates too
    assert not engine.stats.component_errors, engine.stats.component_errors
    for a in sink.alerts:
        for k in ("file", "size", "mtime_ns", "reopenable"):
            a.get("packets", {}).pop(k, None)
    return sink.alerts


def without_packets(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in a.items() if k != "packets"} for a in alerts]


def copies(tmp_path: Path, source: Path) -> dict[str, Path]:
    """The capture plain (mapped, chunked) and compressed (stream)."""
    if source.suffix == ".xz":
        plain = tmp_path / source.stem
        with lzma.open(source) as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return {"mapped": plain, "chunked": plain, "stream": source}
    packed = tmp_path / (source.name + ".gz")
    with open(source, "rb") as src, gzip.open(packed, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return {"mapped": source, "chunked": source, "stream": packed}


def assert_same_alerts(paths: dict[str, Path], runs: list[tuple[str, int]], slice_packets: int = SLICE_PACKETS,
                       blacklist: Path | None = None, ring: int | None = None) -> list[dict[str, Any]]:
    """Every (reader, batch size) gives the alerts the mapped reader gives at the default batch size."""
    want = alerts_of(paths["mapped"], "mapped", DEFAULT_BATCH, slice_packets, blacklist, ring)
    for reader, size in runs:
        got = alerts_of(paths[reader], reader, size, slice_packets, blacklist, ring)
        assert got == want, f"{paths[reader].name}: {reader} reader, batch size {size}, slice_packets " \
                            f"{slice_packets}: {len(got)} alerts, not the {len(want)} of the mapped reader"
    return want


EVERY = [("mapped", 1), ("mapped", 7), ("mapped", 64), ("mapped", 1000), ("stream", 7), ("stream", DEFAULT_BATCH),
         ("chunked", 64)]
NO_SINGLE = [r for r in EVERY if r[1] != 1]  # batches of one packet: only on the small captures (time)
CAPTURES = [
    (CORPUS / "dev01_nmap_syn_top100.pcap", EVERY),  # a port scan within one slice
    (CORPUS / "dev02_nmap_connect_1-200.pcap", EVERY),
    (CORPUS / "dev09_nmap_slow_T1.pcap", EVERY),  # a slow scan: the long window, 30 slices
    (CORPUS / "dev11_failed_handshake_rst.pcap", EVERY),
    (CORPUS / "dev23_mixed_http_dns_with_synscan.pcap", EVERY),
    (CORPUS / "dev24_distributed_scan.pcap", EVERY),
    (CORPUS / "dev10_hping3_syn_flood.pcap", [("mapped", 7), ("mapped", 1000), ("stream", 64), ("chunked", 1000)]),
    (BUSY / "dbusy12_nmap_syn_scan.pcap.xz", [("mapped", 7), ("mapped", 1000), ("stream", 64), ("chunked", 1000)]),
    (BUSY / "dbusy22_xmas_scan_plus_backdoor.pcap.xz", [("mapped", 64), ("stream", 1000), ("chunked", 7)]),
]


@pytest.mark.parametrize("source,runs", CAPTURES, ids=[p.name.split("_")[0] for p, _ in CAPTURES])
def test_corpus_alerts_do_not_depend_on_batches_or_reader(tmp_path, source, runs):
    blacklist = source.parent / "blacklist.txt"
    want = assert_same_alerts(copies(tmp_path, source), runs, blacklist=blacklist)
    assert want  # every capture here alerts


@pytest.mark.parametrize("source", [CORPUS / "dev10_hping3_syn_flood.pcap", BUSY / "dbusy11_syn_flood_onesrc_then_randsrc.pcap.xz"],
                         ids=["dev10", "dbusy11"])
def test_floods_cut_into_pieces_of_slice_packets_alike(tmp_path, source):
    """A flood fills a slice past slice_packets: the pieces are counted from the slice's first
    packet, so batches of any size cut it at the same packets (here pieces of 5,000, which
    batches of 64 and 1,000 and the 64 KiB chunks of a stream all straddle). With a packet ring
    of 1,024 packets the alerts' packets are evicted ones: `partial`, and the same `matched`
    count whatever the batches (the ring took each read's rows when it was read, so how far it
    had got past the slice, and so what it had evicted, followed the reads)."""
    alerts = assert_same_alerts(copies(tmp_path, source), [("mapped", 64), ("mapped", 1000),
                                                           ("chunked", DEFAULT_BATCH)],
                                slice_packets=5000, blacklist=source.parent / "blacklist.txt", ring=1024)
    assert any(a["packets"].get("partial") for a in alerts)


SCANNER, TARGET, PINGER = "10.1.0.66", "10.1.0.1", "10.1.0.5"
COOLDOWN = 30.0


def boundary_capture(path: Path) -> Path:
    """A port scan whose threshold crossing and whose cooldown's end fall on batch boundaries.

    Packet 63 (from 0) is the first of a batch of 7 and the last of a batch of 64: it is burst A's
    20th distinct port (port_scan's threshold). Burst A's last probe (T0 + 0.69) starts the 30 s
    cooldown; burst B sends 40 new ports from T0 + 30.50, one every 10 ms, so its 20th port, at
    T0 + 30.69 when the cooldown ends, is packet 448: the first of a batch of 7 and of 64. One of
    B's ports is 4444 (a watched port), which the correlator holds back one slice. Pings from
    another host fill the rows in between."""
    t0 = BASE_TS
    pkts: list[tuple[float, Any]] = []

    def ping(t: float) -> None:
        pkts.append((t, eth(IP(src=PINGER, dst=TARGET) / ICMP(id=7, seq=len(pkts) % 65536))))

    def probe(t: float, port: int) -> None:
        pkts.append((t, eth(IP(src=SCANNER, dst=TARGET) / TCP(sport=40000, dport=port, flags="S"))))

    for i in range(44):
        ping(t0 + 0.005 * i)
    for i in range(40):
        probe(t0 + 0.30 + 0.01 * i, 1000 + i)
        if i == 19:
            assert len(pkts) == 64  # the crossing is packet 63
    filler = 448 - 19 - len(pkts)
    for i in range(filler):
        ping(t0 + 1.0 + 29.0 * i / filler)
    ports_b = [2000 + i for i in range(40)]
    ports_b[25] = 4444
    for i, port in enumerate(ports_b):
        probe(t0 + 30.50 + 0.01 * i, port)
        if i == 19:
            assert len(pkts) == 449  # the probe at the cooldown's end is packet 448
    return Path(write_pcap(str(path), pkts))


@pytest.mark.parametrize("slice_packets", [SLICE_PACKETS, 16, 50])
def test_crossing_and_cooldown_at_batch_boundaries(tmp_path, slice_packets):
    plain = boundary_capture(tmp_path / "boundary.pcap")
    paths = copies(tmp_path, plain)
    got = assert_same_alerts(paths, EVERY + [("stream", 448), ("chunked", 1)], slice_packets)
    scans = [a for a in got if a["type"] == "port_scan"]
    assert scans and all(a["src_ip"] == SCANNER for a in scans)
    if slice_packets == SLICE_PACKETS:  # each burst within one slice: one alert each, B's after A's cooldown
        assert [a["evidence"]["distinct_ports"] for a in scans] == [40, 40]
        assert scans[0]["timestamp"].endswith("00:00:00.690000+0000")
        assert scans[1]["timestamp"].endswith("00:00:30.890000+0000")
        assert 4444 in scans[1]["evidence"]["watched_ports_touched"]


def udp(t: float, src: str, dport: int) -> tuple[float, Any]:
    return t, eth(IP(src=src, dst=TARGET) / UDP(sport=40000, dport=dport) / b"x")


def probe_then_scan(path: Path, probe_at: float, others: bool) -> Path:
    """A datagram to watched port 4444 at T0 + probe_at, then from T0 + 5 the same source's UDP
    scan of 40 ports; with `others`, another host's pings in the seconds between."""
    t0 = BASE_TS
    pkts = [udp(t0 + probe_at, SCANNER, 4444)]
    if others:
        pkts += [(t0 + s, eth(IP(src=PINGER, dst=TARGET) / ICMP(id=9, seq=s))) for s in (1, 2, 3, 4) if s > probe_at]
    pkts += [udp(t0 + 5.0 + 0.01 * i, SCANNER, 1000 + i) for i in range(40)]
    return Path(write_pcap(str(path), pkts))


@pytest.mark.parametrize("probe_at,absorbed", [(0.5, False), (4.5, True)])
def test_a_held_probe_waits_for_the_adjacent_slice_whatever_comes_between(tmp_path, probe_at, absorbed):
    """A watched-port probe waits one slice for a scan alert that explains it. Which slice that
    is must not depend on other hosts' packets: the probe 4.5 s before the scan stays its own
    alert with or without pings in between (it joined the scan alert when no other slice came
    between, and alerted alone when one did); the probe 0.5 s before joins it either way."""
    got = {}
    for others in (False, True):
        path = probe_then_scan(tmp_path / f"p{int(others)}.pcap", probe_at, others)
        got[others] = without_packets(alerts_of(path, "mapped", DEFAULT_BATCH))  # (the pings shift frame numbers)
    assert got[False] == got[True]
    kinds = [a["type"] for a in got[False]]
    scan = got[False][kinds.index("port_scan")]
    assert ("suspicious_port" not in kinds) == absorbed
    assert scan["evidence"].get("watched_ports_touched", []) == ([4444] if absorbed else [])


def live(path: Path, quiet: float = 0.2) -> list[dict[str, Any]]:
    """The packets as a live sensor sees them: a read returns what arrived, and each poll of
    `quiet` seconds that finds the wire idle calls Engine.idle with the clock (packet time)."""
    sink = Collect()
    engine = Engine(config.build([("general", "sensor", "cuts", "test")]), sinks=[sink])
    raws = list(batches(path, "chunked", 1))  # one packet per read (streamed: the list may outlive the file)
    for raw, nxt in zip(raws, raws[1:] + [None]):
        engine.feed(raw)
        t = float(raw.meta[0, 0]) + raw.meta[0, 1] * 1e-6
        end = float(nxt.meta[0, 0]) + nxt.meta[0, 1] * 1e-6 if nxt is not None else t + 5.0
        while t + quiet < end:
            t += quiet
            engine.idle(t)
    engine.finish()
    return sink.alerts


def scan_with_a_pause(path: Path) -> Path:
    """A UDP scan of 25 ports, a pause of 0.35 s, 15 more ports: all within one second."""
    t0 = BASE_TS
    pkts = [udp(t0 + 0.01 * i, SCANNER, 1000 + i) for i in range(25)]
    pkts += [udp(t0 + 0.60 + 0.01 * i, SCANNER, 2000 + i) for i in range(15)]
    return Path(write_pcap(str(path), pkts))


def answered_late(path: Path) -> Path:
    """Ten SYNs to one port, each answered (SYN-ACK, ACK) 2.95 s later: within the 3 s timeout."""
    t0 = BASE_TS
    c2s, s2c = IP(src=SCANNER, dst=TARGET), IP(src=TARGET, dst=SCANNER)
    pkts = [(t0 + 0.05 + 0.01 * i, eth(c2s / TCP(sport=50000 + i, dport=80, flags="S", seq=1))) for i in range(10)]
    for i in range(10):
        t = t0 + 3.0 + 0.003 * i
        pkts += [(t, eth(s2c / TCP(sport=80, dport=50000 + i, flags="SA", seq=9, ack=2))),
                 (t + 0.001, eth(c2s / TCP(sport=50000 + i, dport=80, flags="A", seq=2, ack=10)))]
    return Path(write_pcap(str(path), pkts))


@pytest.mark.parametrize("capture", ["boundary", "probe", "pause", "answered"])
def test_a_live_sensor_polling_a_quiet_wire_cuts_slices_as_read_does(tmp_path, capture):
    """Live, a quiet wire's poll analyses the slice that waits only once the clock has left it,
    and the probes held back only once the slice after theirs is over: a poll in mid-slice (here
    every 0.2 s between packets) cut the slice there (the paused scan: an alert of 25 ports and an
    update of 40, not one alert of 40), and decided a probe before the scan alert of the next slice
    could explain it. The clock tick stops at a waiting slice's first packet: SYNs answered 2.95 s
    later, in that slice, have not timed out (at 3.2 s they would have: failed_handshake)."""
    path = {"boundary": boundary_capture, "pause": scan_with_a_pause, "answered": answered_late,
            "probe": lambda p: probe_then_scan(p, 4.5, others=True)}[capture](tmp_path / "c.pcap")
    assert live(path) == without_packets(alerts_of(path, "mapped", DEFAULT_BATCH))


def test_frame_numbers_of_a_second_file_read_in_the_same_run(tmp_path):
    """The ring takes rows when their slice is analysed, later than they were read: the second
    file's frames still count from its own first packet (Engine.begin_file passes the rows fed)."""
    first, second = CORPUS / "dev01_nmap_syn_top100.pcap", CORPUS / "dev02_nmap_connect_1-200.pcap"
    alone = alerts_of(second, "mapped", DEFAULT_BATCH)
    for size in (7, DEFAULT_BATCH):
        sink = Collect()
        engine = Engine(config.build([("general", "batch_size", size, "test"), ("general", "sensor", "cuts", "test")]),
                        sinks=[sink])
        for path in (first, second):
            engine.begin_file(str(path))
            for raw in read_batches(str(path), size):
                engine.feed(raw)
        engine.finish()
        frames = [a["packets"]["frames"] for a in sink.alerts if a["packets"].get("file") == str(second)]
        assert frames == [a["packets"]["frames"] for a in alone]
