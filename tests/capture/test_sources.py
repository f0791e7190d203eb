"""How a capture reaches the walker (capture/sources.py): mapped files, compressed files,
standard input and pipes all give libpcap's packets, and the same alerts."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shlex
import subprocess
import sys
import threading

import pytest
import zstandard
from capfiles import libpcap_packets, packets_of, pcap
from conftest import CORPUS, read_alerts
from pcap_oracle import without_file

from wirewatch import config
from wirewatch.capture.batch import CaptureError
from wirewatch.capture.pcapfile import read_batches
from wirewatch.craft import write_pcap
from wirewatch.engine import Engine

MIXED = CORPUS / "dev23_mixed_http_dns_with_synscan.pcap"
COMPRESSORS = {
    "gz": gzip.compress,
    "xz": lzma.compress,
    "bz2": bz2.compress,
    "zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


def wirewatch_read(*args: str, stdin: bytes | None = None, shell: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "wirewatch", "read", *args, "--db", "", "--format", "json"]
    if shell is not None:
        cmd = ["bash", "-c", shell.replace("WIREWATCH", shlex.join(cmd))]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_compressed_captures_give_libpcaps_packets(tmp_path, ext):
    expected, error = libpcap_packets(str(MIXED))
    assert error is None
    path = tmp_path / f"mixed.pcap.{ext}"
    path.write_bytes(COMPRESSORS[ext](MIXED.read_bytes()))
    assert packets_of(read_batches(str(path), 1000)) == expected


def test_compressed_capture_gives_the_same_alerts_as_the_plain_one(tmp_path):
    plain_log, gz_log = tmp_path / "plain.json", tmp_path / "gz.json"
    gz = tmp_path / "mixed.pcap.gz"
    gz.write_bytes(gzip.compress(MIXED.read_bytes()))
    a = wirewatch_read(str(MIXED), "--logfile", str(plain_log))
    b = wirewatch_read(str(gz), "--logfile", str(gz_log))
    assert a.returncode == b.returncode == 0
    assert read_alerts(plain_log) and without_file(read_alerts(plain_log)) == without_file(read_alerts(gz_log))
    assert json.loads(a.stdout)["packets"] == json.loads(b.stdout)["packets"] == 3695


def test_truncated_compressed_capture_keeps_the_packets_before_the_damage(tmp_path):
    data = gzip.compress(MIXED.read_bytes())
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(data[: len(data) // 2])
    got, error = [], None
    try:
        got.extend(read_batches(str(path), 256))
    except CaptureError as exc:
        error = str(exc)
    packets = packets_of(got)
    expected, _ = libpcap_packets(str(MIXED))
    assert 0 < len(packets) < len(expected) and packets == expected[: len(packets)]
    assert error.startswith(f"{path}: ") and f"after packet {len(packets)}" in error


def _cut_inside_record(n_good: int) -> tuple[bytes, int]:
    """dev20's first bytes, cut inside the record after `n_good` packets; and that record's position."""
    import struct

    data = (CORPUS / "dev20_benign_http_200.pcap").read_bytes()
    pos = 24
    for _ in range(n_good):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return data[: pos + 20], pos


def test_standard_input_truncated_keeps_every_good_packet_and_names_the_last(tmp_path):
    data, pos = _cut_inside_record(104)
    r = wirewatch_read("-", "--logfile", str(tmp_path / "a.json"), stdin=data)
    assert r.returncode == 2
    assert json.loads(r.stdout)["packets"] == 104
    lines = [x for x in r.stderr.decode().splitlines() if x.startswith("wirewatch:")]
    assert lines == [(f"wirewatch: standard input: damaged capture at byte {pos}, after packet 104: "
                      "truncated record (the file ends inside it)")]


def test_process_substitution_pipe_is_streamed(tmp_path):
    """`wirewatch read <(head -c N x.pcap)`: a pipe, not a file; no traceback, every good packet."""
    data, pos = _cut_inside_record(104)
    cut = tmp_path / "whole.pcap"
    cut.write_bytes(data)
    r = wirewatch_read(shell=f"WIREWATCH <(cat {cut}) --logfile {tmp_path / 'a.json'}")
    assert r.returncode == 2, r.stderr
    assert json.loads(r.stdout)["packets"] == 104
    assert f"damaged capture at byte {pos}, after packet 104" in r.stderr.decode()
    assert "Traceback" not in r.stderr.decode()


def test_compressed_standard_input(tmp_path):
    log_plain, log_stdin = tmp_path / "a.json", tmp_path / "b.json"
    a = wirewatch_read(str(MIXED), "--logfile", str(log_plain))
    b = wirewatch_read("-", "--logfile", str(log_stdin), stdin=lzma.compress(MIXED.read_bytes()))
    assert a.returncode == b.returncode == 0
    assert without_file(read_alerts(log_plain)) == without_file(read_alerts(log_stdin)) and read_alerts(log_stdin)


def test_nanosecond_time_stamps_reach_the_engine(tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    pkt = Ether() / IP(src="10.1.1.1", dst="10.1.1.2") / TCP(dport=80, flags="S")
    path = str(tmp_path / "ns.pcap")
    base = 1_700_000_000
    write_pcap(path, [(base + 0.123456789, pkt), (base + 1.000000999, pkt)], nano=True)
    engine = Engine(config.build([]), sinks=[])
    for raw in read_batches(path):
        engine.feed(raw)
    engine.flush()
    # microseconds alone would give .123456 and 1.000000
    assert abs(engine.stats.first_ts - (base + 0.123456789)) < 2.5e-7
    assert abs(engine.stats.last_ts - (base + 1.000000999)) < 2.5e-7


def test_big_endian_file_through_the_command_line(tmp_path):
    """A byte-swapped capture (as written on a big-endian machine) gives the same alerts."""
    import struct

    data = MIXED.read_bytes()
    swapped, pos = [struct.pack(">IHHiIII", *struct.unpack_from("<IHHiIII", data))], 24
    while pos < len(data):
        sec, frac, cap, orig = struct.unpack_from("<IIII", data, pos)
        swapped.append(struct.pack(">IIII", sec, frac, cap, orig) + data[pos + 16:pos + 16 + cap])
        pos += 16 + cap
    be = tmp_path / "be.pcap"
    be.write_bytes(b"".join(swapped))
    a = wirewatch_read(str(MIXED), "--logfile", str(tmp_path / "a.json"))
    b = wirewatch_read(str(be), "--logfile", str(tmp_path / "b.json"))
    assert a.returncode == b.returncode == 0
    assert without_file(read_alerts(tmp_path / "a.json")) == without_file(read_alerts(tmp_path / "b.json"))
    assert read_alerts(tmp_path / "a.json")


def test_empty_and_header_only_files(tmp_path):
    empty, header = tmp_path / "empty.pcap", tmp_path / "header.pcap"
    empty.write_bytes(b"")
    header.write_bytes(pcap([]))
    r = wirewatch_read(str(empty), str(header), "--logfile", str(tmp_path / "a.json"))
    assert r.returncode == 2
    assert [x for x in r.stderr.decode().splitlines() if x.startswith("wirewatch:")] == [
        f"wirewatch: {empty}: not a pcap/pcapng capture (empty file)"]
    assert [f["ok"] for f in json.loads(r.stdout)["files"]] == [False, True]


def test_progress_of_a_compressed_file_counts_its_compressed_bytes(tmp_path):
    path = tmp_path / "mixed.pcap.gz"
    path.write_bytes(gzip.compress(MIXED.read_bytes()))
    consumed = [raw.consumed for raw in read_batches(str(path), 256)]
    assert sum(consumed) == path.stat().st_size and len(consumed) > 1


def test_a_pipe_that_stays_open_is_analysed_as_packets_arrive(tmp_path):
    """`tcpdump -w - | wirewatch read -`: a scan written into a pipe that then stays open (a quiet
    wire) is reported while the pipe is still open, not when it closes or a chunk fills."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    scan = [(1_700_000_000 + i * 0.01, Ether() / IP(src="10.9.9.66", dst="10.9.9.2") / TCP(sport=40000, dport=i, flags="S"))
            for i in range(1, 120)]
    data = open(write_pcap(str(tmp_path / "scan.pcap"), scan), "rb").read()
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "read", "-", "--db", ""],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(data)
        proc.stdin.flush()  # and keep the pipe open
        seen = []

        def first_alert() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                seen.append(line.decode())
                if b"port scan" in line:
                    return

        reader = threading.Thread(target=first_alert, daemon=True)
        reader.start()
        reader.join(timeout=60)
        assert any("Possible port scan detected from 10.9.9.66" in line for line in seen), seen
        assert proc.poll() is None, "the alert came only because the reader ended"
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


def _mapped_rss(path: str) -> int:
    """Bytes of `path`'s mappings resident in this process (/proc/self/smaps)."""
    total, mine = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
                mine = len(parts) > 5 and parts[5] == path
            elif mine and parts[0] == "Rss:":
                total += int(parts[1]) * 1024
    return total


def test_a_mapped_file_stays_a_few_mib_resident_however_large_its_frames(tmp_path):
    """48 MB of MTU frames: each batch spans at most walk.BATCH_BYTES and the pages behind the
    walk are handed back, so the mapping's resident set stays under a batch, a release step and
    a few page-cache folios (before: 16,384 frames a batch, 24 MB of the file mapped at once)."""
    from wirewatch.capture import sources, walk

    frame = bytes(IP_FRAME_HEADER) + b"x" * (1514 - len(IP_FRAME_HEADER))
    path = tmp_path / "mtu.pcap"
    path.write_bytes(pcap([(1_700_000_000 + i // 1000, i % 1000, frame) for i in range(32_000)]))
    # the page cache may hold the file in folios of up to 2 MiB, mapped whole by one fault
    bound = walk.BATCH_BYTES + sources.RELEASE_EVERY + 6 * 1024 * 1024
    seen, packets = [], 0
    for raw in read_batches(str(path), 16384):
        assert len(raw.buf) <= walk.BATCH_BYTES
        packets += len(raw.meta)
        seen.append(_mapped_rss(str(path)))
    assert packets == 32_000
    assert len(seen) >= 5 and max(seen) <= bound, (max(seen), bound)


# an Ethernet + IPv4 + TCP header (the frame's bytes after it are payload)
IP_FRAME_HEADER = bytes.fromhex("020000000002020000000001080045000000000100004006000a0000010a000002"
                                "04d200500000000000000000500220000000000000")
