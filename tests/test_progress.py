"""Progress: a bar on a terminal for captures of 50 MB and more; silent otherwise."""

from __future__ import annotations

import io

import numpy as np

from wirewatch.capture.batch import RawBatch
from wirewatch.progress import MIN_BYTES, Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_advances_by_the_bytes_consumed_and_ends_the_line(tmp_path):
    big = tmp_path / "big.pcap"
    with open(big, "wb") as fh:
        fh.truncate(MIN_BYTES)  # sparse: the size is what counts
    term = Terminal()
    p = Progress(str(big), stream=term)
    batch = RawBatch(b"", np.zeros((0, 4), np.uint32), 1, consumed=MIN_BYTES // 2)
    p.update(batch)
    p.update(batch)
    p.close()
    assert term.getvalue() == "\rbig.pcap [############-------------]  50%\rbig.pcap [#########################] 100%\n"


def test_small_files_pipes_and_non_terminals_show_nothing(tmp_path):
    small = tmp_path / "small.pcap"
    small.write_bytes(b"x" * 100)
    for path, stream in ((str(small), Terminal()), ("-", Terminal()), (str(small), io.StringIO())):
        p = Progress(path, stream=stream)
        p.update(RawBatch(b"", np.zeros((0, 4), np.uint32), 1, consumed=100))
        p.close()
        assert not p.enabled and stream.getvalue() == ""
