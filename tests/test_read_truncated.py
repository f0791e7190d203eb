"""A mapped capture file that is truncated while it is read (issue 11): no SIGBUS, the damage
rule instead. The packets analysed are exactly those wholly before the file's new end (the
same as reading the truncated file afterwards), one line names the file and the position,
`wirewatch read` exits 2. The truncation is real: the file shrinks under the mapping, once
from this process between two steps of the reader, once from another process while
`wirewatch read` is stopped in the middle of a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from alert_captures import storm_capture

from wirewatch import config
from wirewatch.capture import sources
from wirewatch.capture.batch import CaptureError
from wirewatch.capture.pcapfile import read_batches
from wirewatch.engine import Engine

PACKETS = 3000
PAD = 200  # bytes of payload: records of 270 bytes, a batch of 256 spans 17 pages
RECORD = 16 + 54 + PAD
BATCH = 256

pytestmark = pytest.mark.skipif(not sources.can_map(), reason="mapping needs the compiled walker's guard")


@pytest.fixture
def capture(tmp_path):
    path = storm_capture(str(tmp_path / "x.pcap"), PACKETS, pad=PAD)
    assert os.path.getsize(path) == 24 + PACKETS * RECORD
    return path


def cut_inside(record: int) -> int:
    """A file size that ends 50 bytes into record `record` (0-based)."""
    return 24 + record * RECORD + 50


def analysed(path: str) -> tuple[int, int]:
    """(packets, suspicious_port alerts) of a fresh read of the file as it is now."""
    engine = Engine(config.build(), [])
    try:
        for raw in read_batches(path, BATCH):
            engine.feed(raw)
    except CaptureError:
        pass
    engine.close()
    return engine.stats.packets, engine.alerts.alerts_by_type.get("suspicious_port", 0)


def test_truncated_while_a_batch_waits_for_the_decoder(capture):
    engine = Engine(config.build(), [])
    batches = read_batches(capture, BATCH)
    engine.feed(next(batches))
    waiting = next(batches)  # walked while the file was whole
    cut = cut_inside(BATCH + 100)
    os.truncate(capture, cut)
    engine.feed(waiting)  # the decoder reads pages past the new end: zeros, not SIGBUS
    with pytest.raises(CaptureError) as err:
        next(batches)
    engine.close()
    good = BATCH + 100
    assert str(err.value) == (f"{capture}: damaged capture at byte {cut}, after packet {good}: the file was "
                              f"truncated to {cut} bytes while it was read")
    assert engine.stats.packets == good and engine.alerts.alerts_by_type == {"suspicious_port": good}
    assert engine.stats.decode_errors == {} and engine.stats.non_ip == 0  # no zeroed row was analysed
    assert analysed(capture) == (good, good)


@pytest.mark.parametrize("record", [2 * BATCH + 7, 5 * BATCH, PACKETS - 1])
def test_truncated_between_two_walks(capture, record):
    engine = Engine(config.build(), [])
    batches = read_batches(capture, BATCH)
    engine.feed(next(batches))
    cut = cut_inside(record)
    os.truncate(capture, cut)
    with pytest.raises(CaptureError) as err:
        for raw in batches:  # the walk itself runs into the pages past the new end
            engine.feed(raw)
    engine.close()
    assert f"damaged capture at byte {cut}, after packet {record}: the file was truncated" in str(err.value)
    assert engine.stats.packets == record and engine.stats.non_ip == 0
    assert analysed(capture) == (record, record)


STOP_AT_SECOND_DECODE = """
import os, signal, sys
from wirewatch import cli, slices
real, calls = slices.decode, [0]
def decode(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 2:  # the second batch is walked: let the test truncate the file now
        os.kill(os.getpid(), signal.SIGSTOP)
    return real(*args, **kwargs)
slices.decode = decode
sys.exit(cli.main(sys.argv[1:]))
"""


def test_wirewatch_read_survives_another_process_truncating_the_file(capture):
    proc = subprocess.Popen([sys.executable, "-c", STOP_AT_SECOND_DECODE, "read", capture, "--logfile", "", "--db", "",
                             "--quiet", "--format", "json", "--no-progress", "--set", f"general.batch_size={BATCH}",
                             "--set", "general.workers=1"],  # one process to stop (a worker would stop itself too)
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), status
        cut = cut_inside(BATCH + 31)
        os.truncate(capture, cut)  # by this process, under the other one's mapping
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"wirewatch: {capture}: damaged capture at byte {cut}, after packet {BATCH + 31}: the file "
                     f"was truncated to {cut} bytes while it was read"], err
    summary = json.loads(out)
    assert summary["packets"] == BATCH + 31 and summary["alerts"] == {"suspicious_port": BATCH + 31}


def test_without_the_compiled_walker_regular_files_are_streamed(capture):
    """No guard without C: a regular file is then read, not mapped (a read past the end just ends)."""
    code = ("from wirewatch.capture import sources, pcapfile; import sys; "
            "assert not sources.can_map(); "
            "assert not any(isinstance(r.buf, memoryview) and r.buf.obj.__class__.__name__ == 'mmap' "
            "for r in pcapfile.read_batches(sys.argv[1], 256)); print('ok')")
    r = subprocess.run([sys.executable, "-c", code, capture], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "WIREWATCH_PURE_NUMPY": "1"}, check=False)
    assert r.stdout.strip() == "ok", r.stderr
