"""The engine's time slicing: batches are cut at expire_interval boundaries of packet
time and consecutive batches within one slice are analysed together."""

from __future__ import annotations

import numpy as np
from conftest import decode_file

from wirewatch import config
from wirewatch.craft import ping, write_pcap
from wirewatch.decode import PacketBatch
from wirewatch.detect.base import Reconfigurable
from wirewatch.engine import Engine


class Recorder(Reconfigurable):
    """A detector that records the time span and size of every slice it is shown."""

    name = "recorder"

    def __init__(self) -> None:
        self.slices: list[tuple[float, float, int]] = []

    def observe(self, b: PacketBatch) -> list:
        self.slices.append((float(b.ts.min()), float(b.ts.max()), len(b)))
        return []

    def expire(self, now: float) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {}


def pings(tmp_path, times: list[float]) -> PacketBatch:
    packets = [p for i, t in enumerate(times) for p in ping(t, "10.0.0.1", "10.0.0.2", i)[:1]]
    return decode_file(write_pcap(str(tmp_path / "p.pcap"), packets))


def feed(engine: Engine, batch: PacketBatch, size: int) -> None:
    for start in range(0, len(batch), size):
        engine.process(batch.select(slice(start, start + size)))


def test_batches_within_one_slice_are_analysed_together(tmp_path):
    batch = pings(tmp_path, [100.0 + 0.1 * i for i in range(10)] + [101.0 + 0.1 * i for i in range(5)])
    rec = Recorder()
    engine = Engine(config.build([("general", "batch_size", 3, "test")]), detectors=[rec])
    feed(engine, batch, 3)  # batches of 3 packets, one of them straddling the 101 s boundary
    assert rec.slices == [(100.0, 100.9, 10)]  # the 101 s slice is still open
    engine.flush()
    assert rec.slices[1:] == [(101.0, 101.4, 5)]
    assert engine.stats.packets == 15


def test_coalescing_is_bounded_and_idle_flushes(tmp_path):
    """A slice longer than slice_packets is analysed in pieces of exactly that many packets,
    counted from its first packet, whatever the batches it came in (here 3, 5 and 7 packets)."""
    batch = pings(tmp_path, [200.0 + 0.01 * i for i in range(30)])
    for size in (3, 5, 7):
        rec = Recorder()
        engine = Engine(config.build([("general", "batch_size", size, "test")]), detectors=[rec])
        engine.slice_packets = 12
        feed(engine, batch, size)
        assert [n for _, _, n in rec.slices] == [12, 12]
        engine.idle(1e9)  # nothing arrived for a while: what waits is analysed
        assert [n for _, _, n in rec.slices] == [12, 12, 6]
        assert np.isclose(rec.slices[-1][1], 200.29)


def test_unanswered_handshakes_time_out_on_a_quiet_wire(tmp_path):
    """Live: SYNs nobody answers, then silence. The idle tick (wall clock) times them out and
    failed_handshake alerts without waiting for another packet."""
    from scapy.layers.inet import IP, TCP

    from wirewatch.craft import eth

    packets = [(1000.0 + i * 0.05, eth(IP(src="10.1.0.66", dst="10.1.0.9") / TCP(sport=40000 + i, dport=22, flags="S")))
               for i in range(10)]
    batch = decode_file(write_pcap(str(tmp_path / "s.pcap"), packets))
    engine = Engine(config.build())
    assert engine.process(batch) == [] and engine.flush() == []
    engine.idle(1001.0)  # 0.5 s after the last SYN: still within the 3 s timeout
    assert engine.alerts.alerts_by_type.get("failed_handshake") is None
    engine.idle(1006.0)
    assert engine.alerts.alerts_by_type.get("failed_handshake") == 1
