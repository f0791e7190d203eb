"""member_table: one boolean gather answers set membership like np.isin does."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from wirewatch.lut import member_table


@given(st.sets(st.integers(0, 65535), max_size=50), st.lists(st.integers(0, 65535), max_size=200))
def test_lookup_equals_isin_for_ports(members, values):
    table = member_table(members, np.uint16)
    v = np.array(values, np.uint16)
    assert len(table) == 65536 and (table[v] == np.isin(v, list(members))).all()


def test_uint8_table_covers_every_protocol_number():
    table = member_table([6, 17], np.uint8)
    assert len(table) == 256 and np.flatnonzero(table).tolist() == [6, 17]
