"""The decoder's columns are declared once (PacketBatch's fields); the compiled decoder
names its outputs and error reasons itself and is bound to them by name."""

from __future__ import annotations

import dataclasses

import numpy as np
from conftest import built
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from test_decode_tunnels import frames_meta

from wirewatch.decode import BATCH_FIELDS, COLUMN_DTYPES, PacketBatch, decode, decode_numpy


def test_columns_come_from_the_packet_batch_declaration():
    declared = [f.name for f in dataclasses.fields(PacketBatch) if "dtype" in f.metadata]
    assert list(BATCH_FIELDS) == declared and set(COLUMN_DTYPES) == set(declared)


def test_compiled_decoder_names_the_same_columns_and_reasons():
    compiled = built("_decode")  # its names, whichever decoder runs (WIREWATCH_PURE_NUMPY=1: the reference)
    assert sorted(compiled.COLUMNS) == sorted(BATCH_FIELDS)
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=4789) / VXLAN() / b"\x00")
    reference = decode_numpy(*frames_meta([frame]), 1)
    assert set(reference.errors) <= set(compiled.ERRORS) and "malformed_inner_packet" in reference.errors
    b = decode(*frames_meta([frame]), 1)
    for name in BATCH_FIELDS:
        assert getattr(b, name).dtype == COLUMN_DTYPES[name], name


def test_selected_and_concatenated_batches_keep_every_column():
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=53))
    b = decode(*frames_meta([frame, frame, frame]), 1)
    picked = b.select(np.array([0, 2]))
    joined = PacketBatch.concat([b, b.select(slice(1, 2))])
    for name in BATCH_FIELDS:
        assert len(getattr(picked, name)) == 2 and len(getattr(joined, name)) == 4, name


def test_selecting_every_row_gives_views_and_any_other_selection_its_rows_in_its_order():
    frames = [bytes(Ether() / IP(src=f"10.0.0.{i}", dst="10.0.0.99") / UDP(sport=1000 + i, dport=53)) for i in range(4)]
    b = decode(*frames_meta(frames), 1)
    for every in (np.arange(4), np.ones(4, bool)):
        s = b.select(every)
        assert np.shares_memory(s.sport, b.sport) and s.sport.tolist() == [1000, 1001, 1002, 1003]
        assert s.derived is not b.derived
    for rows, want in (([0, 2, 1, 3], [1000, 1002, 1001, 1003]), ([0, 0, 3, 3], [1000, 1000, 1003, 1003]),
                       ([0, 3], [1000, 1003]), ([True, False, True, True], [1000, 1002, 1003])):
        s = b.select(np.array(rows))
        assert s.sport.tolist() == want and not np.shares_memory(s.sport, b.sport), rows
