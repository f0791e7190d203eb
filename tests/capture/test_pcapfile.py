"""capture/pcapfile.py: capture files in batches, by the walker, libpcap or a stream, and
one-line errors for what cannot be read."""

from __future__ import annotations

import gzip
import io
import os
import sys

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP

from wirewatch import config
from wirewatch.capture import pcapfile
from wirewatch.capture.pcapfile import DEFAULT_BATCH, STDIN, CaptureError, libpcap_batches, read_batches
from wirewatch.craft import BASE_TS, eth, write_pcap


def capture(tmp_path, n: int = 50, name: str = "p.pcap") -> str:
    pkts = [(BASE_TS + i * 0.01, eth(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=1 + i, flags="S")))
            for i in range(n)]
    return write_pcap(str(tmp_path / name), pkts)


def rows(batches) -> tuple[np.ndarray, list[bytes]]:
    """Every packet's (sec, usec, caplen) and bytes, whatever the batching."""
    meta, data = [], []
    for raw in batches:
        for sec, usec, off, caplen in raw.meta.tolist():
            meta.append((sec, usec, caplen))
            data.append(bytes(raw.buf[off:off + caplen]))
    return np.array(meta), data


def test_batches_hold_every_packet_in_order_at_most_batch_size_each(tmp_path):
    path = capture(tmp_path, 50)
    batches = list(read_batches(path, batch_size=16))
    assert [len(b.meta) for b in batches] == [16, 16, 16, 2]
    meta, data = rows(batches)
    assert meta[:, 0].tolist() == [int(BASE_TS)] * 50 and meta[1, 1] == 10_000
    assert [d[36] * 256 + d[37] for d in data] == list(range(1, 51))  # TCP destination port of each frame


def test_walker_libpcap_and_a_compressed_stream_read_the_same_packets(tmp_path, monkeypatch):
    path = capture(tmp_path, 30)
    walked = rows(read_batches(path, 8))
    with open(path, "rb") as src, gzip.open(tmp_path / "p.pcap.gz", "wb") as dst:
        dst.write(src.read())
    streamed = rows(read_batches(str(tmp_path / "p.pcap.gz"), 8))
    by_libpcap = rows(libpcap_batches(path, 8))
    monkeypatch.setenv("WIREWATCH_READER", "libpcap")
    forced = rows(read_batches(path, 8))
    for other in (streamed, by_libpcap, forced):
        assert np.array_equal(walked[0], other[0]) and walked[1] == other[1]


def test_standard_input(tmp_path, monkeypatch):
    path = capture(tmp_path, 12)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(open(path, "rb")))
    assert len(rows(read_batches(STDIN, 5))[1]) == 12


def test_what_cannot_be_read_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "empty.pcap").write_bytes(b"")
    (tmp_path / "junk.pcap").write_bytes(b"not a capture at all, just text\n" * 4)
    cases = {str(tmp_path / "missing.pcap"): "no such file", str(tmp_path): "is a directory",
             str(tmp_path / "empty.pcap"): "empty file", str(tmp_path / "junk.pcap"): "not a pcap/pcapng capture"}
    for path, why in cases.items():
        with pytest.raises(CaptureError) as exc:
            list(read_batches(path))
        assert str(exc.value).startswith(path + ": ") and why in str(exc.value) and "\n" not in str(exc.value)


def test_libpcap_keeps_every_packet_before_the_damage(tmp_path):
    path = capture(tmp_path, 40)
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:  # the last record's header claims more bytes than the file holds
        fh.truncate(size - 20)
    got = []
    with pytest.raises(CaptureError) as exc:
        for raw in libpcap_batches(path, 16):
            got += raw.meta.tolist()
    assert len(got) == 39 and f"{path}: damaged capture after packet 39" in str(exc.value)


def test_the_library_default_batch_and_what_read_passes():
    assert DEFAULT_BATCH == 4096 == pcapfile.DEFAULT_BATCH
    assert config.build([]).general.batch_size == 16384  # the comment beside DEFAULT_BATCH says so
