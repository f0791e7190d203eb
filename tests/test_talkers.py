"""TopTalkers: packets and bytes per source over many batches, bounded, most packets first."""

from __future__ import annotations

import random

from conftest import decode_file
from crafted import T0, many, syn
from scapy.layers.inet import IP

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


def test_new_and_known_sources_mixed_in_each_batch(tmp_path):
    """Every batch brings known sources and new ones in a random order: each source's
    packets and bytes add up over the batches, and a new one is stored with its address."""
    rng = random.Random(7)
    srcs = [many(4, i) for i in range(40)]
    pkts = [syn(4, rng.choice(srcs[:10 + 6 * (i // 50)]), "10.0.0.9", 1, 80, T0 + i * 0.01) for i in range(300)]
    batch = decode_file(write_pcap(str(tmp_path / "m.pcap"), pkts))
    t = TopTalkers()
    for start in range(0, 300, 50):
        t.add(batch.select(slice(start, start + 50)))
    want: dict[str, list[int]] = {}
    for (_, p), length in zip(pkts, batch.length.tolist()):
        w = want.setdefault(p[IP].src, [0, 0])
        w[0] += 1
        w[1] += length
    assert {x["src_ip"]: [x["packets"], x["bytes"]] for x in t.top(100)} == want
