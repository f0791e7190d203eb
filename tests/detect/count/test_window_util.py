"""unique_first_last / unique_last against a plain Python pass over the keys; sorted_unique against np.unique."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from wirewatch.detect.count.window_util import first_rows, sorted_unique, unique_first_last, unique_last


@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 5), max_size=300))
def test_first_last_and_counts_of_each_distinct_key(values):
    keys = np.array(values, np.uint64)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, k in enumerate(values):
        first.setdefault(k, i)
        last[k] = i
    uk, f, l, n = unique_first_last(keys)
    got = {int(k): (int(a), int(b), int(c)) for k, a, b, c in zip(uk, f, l, n)}
    assert got == {k: (first[k], last[k], values.count(k)) for k in first}
    uk2, l2, n2 = unique_last(keys)
    assert {int(k): (int(b), int(c)) for k, b, c in zip(uk2, l2, n2)} == {k: (last[k], values.count(k)) for k in first}


@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 5), max_size=300), st.sampled_from([np.uint64, np.int64]))
def test_sorted_unique_is_np_unique(values, dtype):
    keys = np.array([v if dtype is np.uint64 else v % 2**62 for v in values], dtype)
    got = sorted_unique(keys)
    assert got.dtype == keys.dtype and got.tolist() == np.unique(keys).tolist()


def test_first_rows_marks_each_keys_first_occurrence():
    keys = np.array([7, 3, 7, 7, 9, 3], np.uint64)
    assert first_rows(keys).tolist() == [True, True, False, False, True, False]
    assert first_rows(np.zeros(0, np.uint64)).tolist() == []
