"""The compiled decoder equals the numpy reference on the busy-network captures the tests
carry (tests/corpus-busy: real traffic, 128 bytes captured per packet), tunnel walk included."""

from __future__ import annotations

from pathlib import Path

from test_decode import assert_same_as_reference

from wirewatch.capture.pcapfile import read_batches
from wirewatch.decode import decode

BUSY = Path(__file__).parent / "corpus-busy"


def test_compiled_decoder_matches_reference_on_the_busy_captures():
    packets = tunnelled = 0
    for path in sorted(BUSY.glob("*.pcap.xz")):
        for raw in read_batches(str(path), 16384):
            assert_same_as_reference(raw.buf, raw.meta, raw.linktype)
            b = decode(raw.buf, raw.meta, raw.linktype)
            packets += len(b)
            tunnelled += int((b.tunnel != 0).sum())
    assert packets > 500_000
    assert tunnelled == 0  # the lab network carries no tunnels: nothing may be mistaken for one
