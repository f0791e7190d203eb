"""capture/batch.py: what every packet source hands the engine (RawBatch, CaptureError)."""

from __future__ import annotations

import numpy as np
from scapy.layers.inet import IP, TCP

from wirewatch.capture.batch import CaptureError, RawBatch
from wirewatch.capture.pcapfile import read_batches
from wirewatch.craft import BASE_TS, eth, write_pcap
from wirewatch.decode import decode


def probes(n: int) -> list:
    return [(BASE_TS + i * 0.25, eth(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=1000 + i, flags="S")))
            for i in range(n)]


def test_prefix_keeps_the_first_rows_of_a_real_capture(tmp_path):
    path = write_pcap(str(tmp_path / "p.pcap"), probes(10), nano=True)
    [raw] = list(read_batches(path))
    assert raw.meta.shape == (10, 4) and raw.sub_usec is not None
    head = raw.prefix(3)
    assert isinstance(head, RawBatch) and head.meta.shape == (3, 4) and len(head.sub_usec) == 3
    assert head.linktype == raw.linktype == 1 and head.buf is raw.buf and head.intact is None
    assert np.array_equal(head.meta, raw.meta[:3])
    assert decode(head.buf, head.meta, head.linktype).dport.tolist() == [1000, 1001, 1002]
    assert raw.meta.shape == (10, 4)  # the batch itself is untouched


def test_prefix_of_a_microsecond_capture_has_no_sub_microseconds(tmp_path):
    [raw] = list(read_batches(write_pcap(str(tmp_path / "p.pcap"), probes(4))))
    assert raw.sub_usec is None and raw.prefix(2).sub_usec is None
    assert raw.prefix(2).meta[:, 0].tolist() == [int(BASE_TS)] * 2 and raw.prefix(2).meta[1, 1] == 250_000


def test_capture_error_is_the_users_one_line_from_reader_to_exit_status(tmp_path):
    """A capture that cannot be read (missing; cut inside a record) raises CaptureError from
    the reader, one line naming the file, and `wirewatch read` prints exactly that line, exit 2."""
    import pytest
    from conftest import cli

    cut = tmp_path / "cut.pcap"
    whole = write_pcap(str(tmp_path / "p.pcap"), probes(10))
    data = open(whole, "rb").read()
    cut.write_bytes(data[:24 + 3 * (16 + 54) + 20])  # three whole records, then 20 bytes of the fourth
    for path, why in ((tmp_path / "none.pcap", "no such file"), (cut, "after packet 3")):
        with pytest.raises(CaptureError) as caught:
            for _ in read_batches(str(path)):
                pass
        line = str(caught.value)
        assert line.startswith(f"{path}: ") and why in line and "\n" not in line, line
        r = cli("read", str(path), "--logfile", "", "--quiet")
        assert r.returncode == 2 and r.stderr.splitlines() == [f"wirewatch: {line}"], r.stderr
