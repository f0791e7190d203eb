"""TopTalkers: packets and bytes per source over many batches, bounded, most packets first."""

from __future__ import annotations

from conftest import decode_file
from crafted import T0, many, syn

from wirewatch.craft import write_pcap
from wirewatch.talkers import TopTalkers


def test_counts_per_source_across_batches_and_order(tmp_path):
    pkts = [syn(4, "10.0.0.1", "10.0.0.9", 1, 80, T0 + i * 0.01) for i in range(5)]
    pkts += [syn(4, "10.0.0.2", "10.0.0.9", 1, 80, T0 + 1 + i * 0.01) for i in range(3)]
    batch = decode_file(write_pcap(str(tmp_path / "t.pcap"), pkts))
    t = TopTalkers()
    t.add(batch.select(slice(0, 4)))
    t.add(batch.select(slice(4, None)))
    top = t.top()
    assert [(x["src_ip"], x["packets"]) for x in top] == [("10.0.0.1", 5), ("10.0.0.2", 3)]
    assert top[0]["bytes"] == int(batch.length[:5].sum())


def test_bounded_under_a_flood_of_sources(tmp_path):
    pkts = [syn(4, many(4, i), "10.0.0.9", 1, 80, T0 + i * 0.001) for i in range(160)]
    t = TopTalkers(capacity=16)
    t.add(decode_file(write_pcap(str(tmp_path / "f.pcap"), pkts)))
    assert t.table.size <= 16 and t.table.evicted == 160 - t.table.size and len(t.top(100)) == t.table.size
