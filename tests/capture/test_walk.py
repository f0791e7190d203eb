"""wirewatch's capture-file reader (capture/walk.py, native/pcapwalk.c) against libpcap's.

Every reader variant (mapped, streamed in small chunks; compiled walker, Python walker)
must give libpcap's packets, time stamps, captured lengths and link type, and stop where
libpcap stops on a damaged file, with an error exactly when libpcap has one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from capfiles import (
    Interface,
    epb,
    frames,
    idb,
    libpcap_packets,
    obsolete_pb,
    pcap,
    shb,
    spb,
    unknown_block,
    walked,
)
from conftest import CORPUS, PURE_NUMPY, built, native_paths

from wirewatch.capture import walk
from wirewatch.capture.pcapfile import libpcap_batches, read_batches
from wirewatch.decode import BATCH_FIELDS, decode

VARIANTS = [  # (stream chunk or None for the mapping, compiled walker)
    (None, True), (None, False), (7, True), (64, False), (1 << 20, True),
]
BASE_TS = 1_700_000_000


def assert_like_libpcap(path, data: bytes | None = None, variants=VARIANTS) -> list:
    expected, error = libpcap_packets(str(path))
    for chunk, compiled in variants:
        got, _, got_error = walked(str(path), chunk, compiled, data=data)
        assert got == expected, f"chunk={chunk} compiled={compiled}"
        assert (got_error is None) == (error is None), f"chunk={chunk} compiled={compiled}: {got_error} / {error}"
    return expected


def test_compiled_walker_is_built():
    """Built either way (ImportError: needs gcc and Python headers); used unless
    WIREWATCH_PURE_NUMPY=1 chooses the Python reference walker."""
    assert (walk._compiled is built("_pcapwalk")) is not PURE_NUMPY
    assert (walk._compiled is None) is PURE_NUMPY


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.pcap")), ids=lambda p: p.name)
def test_every_corpus_capture_reads_as_libpcap_reads_it(path):
    expected = assert_like_libpcap(path, variants=[(None, True), (None, False), (100_000, True)])
    assert len(expected) > 0


def test_corpus_batches_decode_to_the_same_columns(tmp_path):
    """The decoder sees the same packets through the mapped windows as through libpcap's copies."""
    path = str(CORPUS / "dev23_mixed_http_dns_with_synscan.pcap")
    ours = [decode(r.buf, r.meta, r.linktype) for r in read_batches(path, 512)]
    theirs = [decode(r.buf, r.meta, r.linktype) for r in libpcap_batches(path, 512)]
    assert [len(b) for b in ours] == [len(b) for b in theirs]
    for a, b in zip(ours, theirs):
        for name in BATCH_FIELDS:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert a.errors == b.errors and a.non_ip == b.non_ip


@pytest.mark.parametrize("big,nano", list(itertools.product((False, True), (False, True))))
def test_classic_pcap_both_byte_orders_and_resolutions(tmp_path, big, nano):
    fr = frames(9)
    frac = 999_999_999 if nano else 999_999
    packets = [(BASE_TS + i, (i * 123_457_003) % frac, f) for i, f in enumerate(fr)]
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap(packets, big=big, nano=nano))
    expected = assert_like_libpcap(path)
    assert [p[3] for p in expected] == fr
    _, subs, _ = walked(str(path))
    # libpcap gives microseconds; the nanoseconds beyond them are kept alongside
    for (sec, frac_in, _), (got_sec, usec, *_), sub in zip(packets, expected, subs):
        assert got_sec == sec
        assert usec * 1000 + sub == (frac_in if nano else frac_in * 1000)


def test_classic_pcap_records_longer_than_the_snapshot_are_cut_as_libpcap_cuts_them(tmp_path):
    fr = frames(4)
    path = tmp_path / "snap.pcap"
    path.write_bytes(pcap([(BASE_TS, 0, f) for f in fr], snaplen=60))
    expected = assert_like_libpcap(path)
    assert [p[2] for p in expected] == [min(60, len(f)) for f in fr]


def _pcapng(big: bool, interfaces: list[Interface], fr: list[bytes]) -> bytes:
    out = [shb(big)] + [idb(i, big) for i in interfaces]
    for k, f in enumerate(fr):
        ifid = k % len(interfaces)
        ts = (BASE_TS + k) * 10**9 + k * 111_111_111 if interfaces[ifid].tsresol == 9 else (BASE_TS + k) * 10**6 + k
        kind = k % 4
        if kind == 1:
            out.append(obsolete_pb(ifid, ts, f, big))
        elif kind == 2:
            out.append(unknown_block(big))
            out.append(epb(ifid, ts, f, big))
        else:
            out.append(epb(ifid, ts, f, big))
    return b"".join(out)


@pytest.mark.parametrize("big", (False, True))
def test_pcapng_both_byte_orders_packet_block_kinds_and_unknown_blocks(tmp_path, big):
    fr = frames(10)
    data = _pcapng(big, [Interface(tsresol=9), Interface(), Interface(snaplen=0, tsresol=6)], fr)
    data += spb(fr[0], big)
    path = tmp_path / "t.pcapng"
    path.write_bytes(data)
    expected = assert_like_libpcap(path)
    assert [p[3] for p in expected] == fr + [fr[0]]


@pytest.mark.parametrize("tsresol,tsoffset", [(9, None), (3, 100), (0x80 | 20, None), (12, 7), (0, None)])
def test_pcapng_time_stamp_resolutions_and_offsets(tmp_path, tsresol, tsoffset):
    fr = frames(5)
    units = 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10**tsresol
    base = min(BASE_TS, 2**63 // units - 10)  # picoseconds since 1970 do not fit in 64 bits
    stamps = [(base + k) * units + (k * 987_654_321_987) % units for k in range(5)]
    data = shb() + idb(Interface(tsresol=tsresol, tsoffset=tsoffset)) + b"".join(
        epb(0, ts, f) for ts, f in zip(stamps, fr)) + spb(fr[0])
    path = tmp_path / "res.pcapng"
    path.write_bytes(data)
    expected = assert_like_libpcap(path)
    _, subs, _ = walked(str(path))
    for ts, (sec, usec, *_), sub in zip(stamps, expected, subs):
        assert sec == ts // units + (tsoffset or 0)
        assert usec * 1000 + sub == (ts % units) * 10**9 // units  # nanoseconds kept
    assert expected[-1][:2] == ((tsoffset or 0), 0)  # a simple packet has no time stamp


def test_pcapng_interfaces_of_different_link_types_give_batches_of_one_link_type(tmp_path):
    """libpcap refuses such files; wirewatch reads each packet with its own interface's link type."""
    ip_only = [f[14:] for f in frames(6)]  # raw IP: the Ethernet header removed
    eth = frames(6)
    blocks = [shb(), idb(Interface(linktype=1)), idb(Interface(linktype=101, tsresol=9))]
    expected = []
    for k in range(6):
        ifid = 1 if k in (2, 3, 5) else 0
        data = ip_only[k] if ifid else eth[k]
        ts = (BASE_TS + k) * (10**9 if ifid else 10**6) + 5
        blocks.append(epb(ifid, ts, data))
        expected.append((BASE_TS + k, 0 if ifid else 5, len(data), data, 12 if ifid else 1))
    # a second section describes its interfaces anew, in the other byte order
    blocks += [shb(True), idb(Interface(linktype=101), True), epb(0, BASE_TS * 10**6, ip_only[0], True)]
    expected.append((BASE_TS, 0, len(ip_only[0]), ip_only[0], 12))
    path = tmp_path / "multi.pcapng"
    path.write_bytes(b"".join(blocks))
    for chunk, compiled in VARIANTS:
        got, subs, error = walked(str(path), chunk, compiled)
        assert error is None and got == expected
        assert subs[2] == 5
    batches = list(read_batches(str(path), 64))
    assert [r.linktype for r in batches] == [1, 12, 1, 12, 12]


def _record_bounds(data: bytes, first: int, big: bool, classic: bool) -> list[int]:
    import struct

    bounds, pos, o = [], first, ">" if big else "<"
    while pos < len(data):
        bounds.append(pos)
        pos += 16 + struct.unpack_from(o + "I", data, pos + 8)[0] if classic else struct.unpack_from(
            o + "I", data, pos + 4)[0]
    return bounds


@pytest.mark.parametrize("kind", ["pcap-le", "pcap-be-ns", "pcapng-le", "pcapng-be"])
def test_cut_at_every_byte_stops_where_libpcap_stops(tmp_path, kind):
    fr = frames(5)
    big = kind.endswith(("be", "be-ns"))
    if kind.startswith("pcapng"):
        data = _pcapng(big, [Interface(tsresol=9), Interface()], fr)
    else:
        data = pcap([(BASE_TS + i, i * 1000, f) for i, f in enumerate(fr)], big=big, nano=kind.endswith("ns"))
    path = tmp_path / "cut"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        expected, error = libpcap_packets(str(path))
        for chunk, compiled in ((None, True), (None, False), (5, True), (64, False)):
            got, _, got_error = walked(str(path), chunk, compiled, data=data[:cut])
            assert got == expected, (cut, chunk, compiled)
            assert (got_error is None) == (error is None), (cut, chunk, compiled, got_error, error)
            if got_error and got:
                assert f"after packet {len(got)}:" in got_error, got_error


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_damaged_length_fields_stop_at_the_damaged_record(tmp_path, kind):
    """A length field overwritten in any record: the packets before it, then one error naming
    the record's byte position and the last good packet, as libpcap stops."""
    import struct

    fr = frames(6)
    if kind == "pcapng":
        data = _pcapng(False, [Interface()], fr)
        first = len(shb()) + len(idb(Interface()))
    else:
        data = pcap([(BASE_TS, i, f) for i, f in enumerate(fr)])
        first = 24
    bounds = _record_bounds(data, first, False, kind == "pcap")
    field = 8 if kind == "pcap" else 4  # caplen of a record, total length of a block
    path = tmp_path / "bad"
    for k, start in enumerate(bounds):
        for value in (0xFFFFFFF0, 262145, 7):
            bad = bytearray(data)
            struct.pack_into("<I", bad, start + field, value)
            path.write_bytes(bytes(bad))
            expected, error = libpcap_packets(str(path))
            if error is None:
                continue  # a value that happens to form valid records
            for chunk, compiled in ((None, True), (None, False), (11, True)):
                got, _, got_error = walked(str(path), chunk, compiled, data=bytes(bad))
                assert got == expected and got_error, (k, value, chunk, compiled)
                if value != 7:  # a short length makes the next bytes look like a record: found later
                    assert f"damaged capture at byte {start}, " in got_error, got_error
                assert f"after packet {len(got)}:" in got_error or not got


def test_damage_message_names_file_byte_and_last_good_packet(tmp_path):
    data = (CORPUS / "dev20_benign_http_200.pcap").read_bytes()
    bounds = _record_bounds(data, 24, False, True)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: bounds[104] + 9])  # inside the 105th record's header
    got, _, error = walked(str(cut))
    assert len(got) == 104
    assert error == f"{cut}: damaged capture at byte {bounds[104]}, after packet 104: " \
                    "truncated record (the file ends inside it)"


@pytest.mark.parametrize("compiled", (True, False), ids=("compiled", "reference"))
def test_a_start_outside_the_buffer_is_refused_not_read(compiled):
    """The compiled walker reads buf + pos without Python's bounds checks: a start before the
    buffer or past its end must be refused by both walkers alike, not read."""
    kernels = built("_pcapwalk") if compiled else walk
    data = pcap([(BASE_TS, 0, frames(1)[0])])[24:]
    meta, sub = np.empty((4, 4), np.uint32), np.empty(4, np.uint16)
    ifs = (np.array([1], np.int32), np.array([65535], np.uint32), np.array([10**6], np.uint64), np.zeros(1, np.int64))
    for pos in (-1, -len(data), len(data) + 1):
        with pytest.raises(ValueError, match="pos outside the buffer"):
            kernels.walk_pcap(data, pos, 0, 0, 65535, meta, sub)
        with pytest.raises(ValueError, match="pos outside the buffer"):
            kernels.walk_pcapng(data, pos, 0, *ifs, meta, sub)
    n, end, status, _ = kernels.walk_pcap(data, 0, 0, 0, 65535, meta, sub)  # the same buffer walked from 0
    assert (n, end, status) == (1, len(data), walk.END)
    assert kernels.walk_pcap(data, len(data), 0, 0, 65535, meta, sub)[:3] == (0, len(data), walk.END)


@pytest.mark.parametrize("block", ["section header", "interface description"])
def test_a_header_block_longer_than_the_file_is_named_with_its_offset(tmp_path, block):
    """A section header (or interface description) whose length runs past the end of the file
    (main: 'pcapng without an interface description block', which it has): damage at the block's
    byte, what it claims and where the file ends, from every reader variant alike."""
    import struct

    data = bytearray(_pcapng(False, [Interface()], frames(3)))
    at = 0 if block == "section header" else len(shb())
    struct.pack_into("<I", data, at + 4, 4096)
    path = tmp_path / "long.pcapng"
    path.write_bytes(bytes(data))
    assert libpcap_packets(str(path))[1] is not None  # libpcap refuses it too
    for chunk, compiled in VARIANTS:
        got, _, error = walked(str(path), chunk, compiled, data=bytes(data))
        assert got == [] and error == (f"{path}: damaged capture at byte {at}, before the first packet: {block} "
                                       f"block of 4096 bytes is longer than the file, which ends "
                                       f"{len(data) - at} bytes into it"), (chunk, compiled)


@pytest.mark.parametrize("kind", ["pcap-le", "pcap-be-ns", "pcapng-le", "pcapng-be"])
def test_a_batch_spans_at_most_batch_bytes_and_the_cap_changes_no_packet(tmp_path, monkeypatch, kind):
    """walk.BATCH_BYTES (a mapped file's pages of a batch are resident while it is decoded) cuts
    batches by bytes as well as by count: libpcap's packets still, in batches of at most that many
    bytes, a record longer than the cap in a batch of its own; cut at any byte, the same packets
    and errors as libpcap's, as without the cap."""
    fr = frames(9)
    fr[4] = fr[4] + b"L" * 700  # longer than the cap below
    big = kind.endswith(("be", "be-ns"))
    if kind.startswith("pcapng"):
        data = _pcapng(big, [Interface(tsresol=9), Interface()], fr)
    else:
        data = pcap([(BASE_TS + i, i * 1000, f) for i, f in enumerate(fr)], big=big, nano=kind.endswith("ns"))
    cap = 300
    monkeypatch.setattr(walk, "BATCH_BYTES", cap)
    path = tmp_path / "capped"
    path.write_bytes(data)
    assert_like_libpcap(path)
    for compiled in (True, False):
        with native_paths(compiled):
            batches = list(read_batches(str(path), 64, compiled))
        assert sum(len(r.meta) for r in batches) == len(fr)
        assert len(batches) >= 3  # by count alone (64 a batch): one
        for r in batches:
            assert len(r.buf) <= cap or len(r.meta) == 1, (compiled, len(r.buf), len(r.meta))
    for cut in range(0, len(data) + 1, 7):
        path.write_bytes(data[:cut])
        expected, error = libpcap_packets(str(path))
        for chunk, compiled in ((None, True), (None, False), (5, True)):
            got, _, got_error = walked(str(path), chunk, compiled, batch_size=64, data=data[:cut])
            assert got == expected, (cut, chunk, compiled)
            assert (got_error is None) == (error is None), (cut, chunk, compiled, got_error, error)
