"""slices.py: the time slices come from packet times and order alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wirewatch.capture.pcapfile import read_batches
from wirewatch.slices import ExpiryClock, TimeSlicer, decode_raw

HERE = Path(__file__).resolve().parent
CAPTURE = HERE / "corpus" / "dev01_nmap_syn_top100.pcap"


def cut(batch_size: int, step: float, limit: int) -> list[tuple[float, float, int]]:
    slicer = TimeSlicer(step, limit)
    out = []
    for raw in read_batches(str(CAPTURE), batch_size):
        out += [(float(s.ts[0]), float(s.ts[-1]), len(s)) for s in slicer.add(decode_raw(raw, 4)) if len(s)]
    last = slicer.take()
    if last is not None:
        out.append((float(last.ts[0]), float(last.ts[-1]), len(last)))
    assert slicer.take() is None  # taken once
    return out


@pytest.mark.parametrize("step,limit", [(1.0, 65_536), (0.05, 65_536), (1.0, 100)])
def test_slices_do_not_depend_on_the_readers_batches(step, limit):
    want = cut(4096, step, limit)
    assert sum(n for _, _, n in want) == sum(len(decode_raw(r, 4)) for r in read_batches(str(CAPTURE)))
    for size in (1, 7, 333):
        assert cut(size, step, limit) == want
    for a, b, n in want:
        assert np.floor(b / step) == np.floor(a / step) and n <= limit  # one tick each, at most `limit` packets
    if limit == 100:
        assert max(n for _, _, n in want) == 100 and len(want) > len(cut(4096, step, 65_536))


def test_the_expiry_clock_ticks_every_step_from_the_first_time():
    clock = ExpiryClock(1.0)
    assert [clock.due(t) for t in (10.2, 10.9, 11.2, 11.3, 12.1, 12.3, 20.0)] == \
        [False, False, True, False, False, True, True]
