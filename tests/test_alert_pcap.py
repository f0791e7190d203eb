"""alert_pcap.py: pcaps written are read back by wirewatch's reader (nanosecond stamps, bytes
as captured); frames re-read from a capture are the ones asked for; the live spool keeps
within its caps, oldest removed first; an alert without readable packets is one line."""

from __future__ import annotations

import io
import os
import struct

import pytest
from conftest import CORPUS

from wirewatch.alert_pcap import PacketsError, PcapSpool, alert_pcap, capture_frames, write_pcap
from wirewatch.capture.pcapfile import read_batches

SCAN = str(CORPUS / "dev01_nmap_syn_top100.pcap")


def test_frames_round_trip(tmp_path):
    got = capture_frames(SCAN, [7, 5, 209, 5])
    assert len(got) == 3
    raws = list(read_batches(SCAN))
    meta = raws[0].meta
    for (sec, ns, data, lt, wire), frame in zip(got, [5, 7, 209]):
        s, us, off, cap = (int(x) for x in meta[frame - 1])
        assert (sec, ns, data, lt, wire) == (s, us * 1000, bytes(raws[0].buf[off:off + cap]), raws[0].linktype, cap)
    out = tmp_path / "x.pcap"
    with open(out, "wb") as fh:
        assert write_pcap(fh, got) == 3
    back = list(read_batches(str(out)))
    assert len(back[0].meta) == 3 and back[0].sub_usec is not None
    assert [bytes(back[0].buf[o:o + c]) for _, _, o, c in back[0].meta.tolist()] == [g[2] for g in got]


def test_spool_caps_files_and_bytes_oldest_first(tmp_path):
    spool = PcapSpool(str(tmp_path / "pcap"), max_files=3, max_bytes=10**9)
    pkt = capture_frames(SCAN, [5])
    names = []
    for i in range(5):
        names.append(spool.write({"type": "port_scan"}, pkt))
        os.utime(tmp_path / "pcap" / names[-1], ns=(i * 10**9, i * 10**9))
    assert sorted(os.listdir(tmp_path / "pcap")) == sorted(names[-3:]) and spool.removed == 2
    size = (tmp_path / "pcap" / names[-1]).stat().st_size
    tight = PcapSpool(str(tmp_path / "pcap"), max_files=100, max_bytes=2 * size)
    tight.write({"type": "x"}, pkt)
    assert len(os.listdir(tmp_path / "pcap")) == 2 and tight.removed == 2
    assert alert_pcap({"packets": {"pcap": names[-1]}}, str(tmp_path / "pcap")) == \
        (tmp_path / "pcap" / names[-1]).read_bytes()


def test_two_sensors_sharing_a_pcap_dir_each_keep_their_caps(tmp_path):
    """As README says: the caps are per sensor. Each removes its own oldest (and what it found at
    its first write); the directory holds up to the sum of the two caps, never more."""
    d = tmp_path / "pcap"
    pkt = capture_frames(SCAN, [5])
    a, b = (PcapSpool(str(d), max_files=3, max_bytes=10**9) for _ in range(2))
    mine: dict[int, list[str]] = {0: [], 1: []}
    for _ in range(10):
        for k, spool in enumerate((a, b)):
            mine[k].append(spool.write({"type": f"s{k}"}, pkt))
            assert len(os.listdir(d)) <= 6
    assert sorted(os.listdir(d)) == sorted(mine[0][-3:] + mine[1][-3:])
    assert a.written == b.written == 10 and a.removed + b.removed == 14  # a file counted once, by who removed it


def test_spool_lists_its_directory_once(tmp_path, monkeypatch):
    """It listed and stat'ed the whole directory (up to pcap_max_files) on every live alert,
    inside the capture loop. Now once, at the first write; the caps still hold, oldest first,
    files of an earlier run included."""
    d = tmp_path / "pcap"
    pkt = capture_frames(SCAN, [5])
    earlier = PcapSpool(str(d), max_files=100, max_bytes=10**9).write({"type": "old"}, pkt)
    os.utime(d / earlier, ns=(0, 0))
    calls = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: calls.append(path) or real(path))
    spool = PcapSpool(str(d), max_files=3, max_bytes=10**9)
    names = [spool.write({"type": "port_scan"}, pkt) for _ in range(6)]
    assert len(calls) == 1
    assert sorted(os.listdir(d)) == sorted(names[-3:]) and spool.removed == 4  # the earlier run's first
    (d / names[-3]).unlink()  # removed by someone else: not an error, still counted as gone
    spool.write({"type": "port_scan"}, pkt)
    assert len(os.listdir(d)) == 3 and len(calls) == 1


def test_written_pcap_keeps_the_wire_length():
    buf = io.BytesIO()
    write_pcap(buf, [(1, 5, b"x" * 60, 1, 1514), (1, 6, b"y" * 54, 1, 54), (1, 7, b"z" * 54, 1, 0)])
    data = buf.getvalue()
    assert struct.unpack_from("<II", data, 24 + 8) == (60, 1514)
    assert struct.unpack_from("<II", data, 24 + 76 + 8) == (54, 54)
    assert struct.unpack_from("<II", data, 24 + 76 + 70 + 8) == (54, 54)  # never less than what was kept


def test_spooled_pcaps_are_not_for_every_local_user(tmp_path):
    """They hold payloads (passwords, cookies): the directory 0750 and files 0640 whatever the umask."""
    old = os.umask(0o022)
    try:
        spool = PcapSpool(str(tmp_path / "pcap"), max_files=3, max_bytes=10**9)
        name = spool.write({"type": "port_scan"}, capture_frames(SCAN, [5]))
    finally:
        os.umask(old)
    assert (tmp_path / "pcap").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "pcap" / name).stat().st_mode & 0o777 == 0o640
    assert not [n for n in os.listdir(tmp_path / "pcap") if n.endswith(".part")]


@pytest.mark.parametrize("record, words", [
    ({}, "no packets recorded"),
    ({"packets": {"frames": []}}, "none matched"),
    ({"packets": {"pcap": "../etc/passwd"}}, "not a file name"),
    ({"packets": {"pcap": "alert-gone.pcap"}}, "no longer there"),
    ({"packets": {"file": "/nonexistent/x.pcap", "frames": [1]}}, "no longer there"),
    ({"packets": {"file": "-", "frames": [1]}}, "standard input"),
])
def test_unreadable_packets_are_one_line(tmp_path, record, words):
    with pytest.raises(PacketsError, match=words) as exc:
        alert_pcap(record, str(tmp_path))
    assert "\n" not in str(exc.value)


def test_empty_pcap_is_valid():
    buf = io.BytesIO()
    assert write_pcap(buf, []) == 0 and len(buf.getvalue()) == 24
