"""packet_ring.py: bounded in packets and bytes, evictions counted, wrap-around keeps capture
order, and on a real capture each alert's frames are the ones tshark finds for it."""

from __future__ import annotations

import numpy as np
from conftest import CORPUS, cli, decode_file, read_alerts
from pcap_oracle import alert_frames, frames

from wirewatch.packet_ring import ROW_BYTES, PacketRing
from wirewatch.schema import format_ts

SWEEP = CORPUS / "dev07_nmap_ping_sweep.pcap"


def test_bounded_by_packets_and_by_bytes():
    assert PacketRing(1000, 10**9).capacity == 1000
    assert PacketRing(10**6, 100 * ROW_BYTES).capacity == 100


def _alert(batch, row: int, **kw) -> dict:
    from wirewatch.addr import addr_str
    a = {"type": "port_scan", "src_ip": addr_str(batch.src_hi[row], batch.src_lo[row]),
         "dest_ip": addr_str(batch.dst_hi[row], batch.dst_lo[row]), "proto": "TCP",
         "timestamp": format_ts(batch.ts[-1]), "evidence": {"first_seen": format_ts(batch.ts[0]),
                                                             "last_seen": format_ts(batch.ts[-1])}}
    a.update(kw)
    return a


def test_wrap_around_keeps_capture_order_and_counts_evictions():
    batch = decode_file(str(CORPUS / "dev01_nmap_syn_top100.pcap"))
    n = len(batch)
    whole, small = PacketRing(10_000, 10**9), PacketRing(64, 10**9)
    whole.begin_file("x.pcap")
    small.begin_file("x.pcap")
    for a in range(0, n, 10):  # batches of 10: the small ring wraps many times
        whole.add(batch.select(slice(a, a + 10)))
        small.add(batch.select(slice(a, a + 10)))
    alert = _alert(batch, 5)
    f_all, _, m_all, partial_all = whole.match(alert, 10_000)
    f_small, files, m_small, partial_small = small.match(alert, 10_000)
    assert small.evicted == n - 64 and whole.evicted == 0 and not partial_all and partial_small
    assert list(f_small) == list(f_all[-len(f_small):]) and m_small == len(f_small) < m_all
    assert list(f_small) == sorted(f_small) and set(files.tolist()) == {0}
    assert small.stats() == {"packet_ring_packets": 64, "packet_ring_evicted": n - 64}


def test_a_batch_larger_than_the_ring_keeps_its_last_rows():
    batch = decode_file(str(CORPUS / "dev01_nmap_syn_top100.pcap"))
    ring = PacketRing(50, 10**9)
    ring.begin_file("x.pcap")
    ring.add(batch)
    assert ring.evicted == len(batch) - 50
    n = len(batch)
    assert list(ring.ts[np.arange(n - 50, n) % 50]) == list(batch.ts[-50:])
    rows, files, matched, partial = ring.match(_alert(batch, n - 1), 1000)
    assert partial and matched == len(rows) and rows.min() >= n - 50
    assert ring.frames(rows, files)["frames"] == (rows + 1).tolist()  # frame = row + 1 in the one file


def test_sweep_alerts_match_tshark(tmp_path):
    """A ping sweep names no destination: its packets are the sweeper's probes and the answers."""
    log = tmp_path / "a.json"
    r = cli("read", str(SWEEP), "--logfile", str(log), "--quiet", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = frames(str(SWEEP))
    alerts = read_alerts(log)
    assert alerts
    for a in alerts:
        want = alert_frames(rows, a)
        assert a["packets"]["frames"] == [w["frame"] for w in want][:100], a["type"]
        assert a["packets"]["matched"] == len(want)
    state = __import__("json").loads(r.stdout)["detector_state"]
    assert state["packet_ring_evicted"] == 0 and state["packet_ring_packets"] == len(rows)


def test_no_match_without_addresses():
    batch = decode_file(str(CORPUS / "dev01_nmap_syn_top100.pcap"))
    ring = PacketRing(1000, 10**9)
    ring.add(batch)
    rows, _, matched, _ = ring.match({"type": "x", "evidence": {}}, 10)
    assert matched == 0 and not len(rows)
    rows, files, matched, _ = ring.match(_alert(batch, 5), 10)
    assert matched > 10 and len(rows) == 10 and set(files.tolist()) == {-1}  # no begin_file: no file
    assert ring.frames(rows, files) == {"frames": []}


def test_live_bytes_survive_the_readers_reused_buffers():
    """The compiled live loop hands out two preallocated buffers in turn: the ring must keep
    its own copy, or a held batch's packets are overwritten two batches later (review)."""
    from wirewatch.capture.pcapfile import read_batches
    from wirewatch.decode import decode

    raws = list(read_batches(str(CORPUS / "dev01_nmap_syn_top100.pcap"), 16))
    bufs, metas = [bytearray(max(len(r.buf) for r in raws)) for _ in range(2)], [None, None]
    ring = PacketRing(10_000, 10**9, keep_bytes=True, max_raw_bytes=10**9)
    want = []
    for i, r in enumerate(raws):
        buf = bufs[i % 2]
        buf[:len(r.buf)] = bytes(r.buf)
        metas[i % 2] = np.array(r.meta, copy=True)
        aliased = memoryview(buf)[:len(r.buf)]
        ring.add(decode(aliased, metas[i % 2], r.linktype), (aliased, metas[i % 2], r.sub_usec, r.linktype, None))
        want += [(int(s), int(u) * 1000, bytes(r.buf[o:o + c])) for s, u, o, c in r.meta.tolist()]
    got = [(sec, ns, data) for sec, ns, data, _, _ in ring.packets(np.arange(len(want)))]
    assert len(raws) > 3 and got == want


def test_the_detectors_whose_alerts_carry_the_answers_are_declared_in_their_specs():
    from pcap_oracle import CONVERSATION

    from wirewatch.packet_ring import conversation_types
    assert conversation_types() == CONVERSATION  # the oracle spells them on its own
    assert "unusual_protocol" not in conversation_types() and "distributed_scan" not in conversation_types()
