"""The compiled kernels (native/kernels.c) against their numpy reference (detect/count/kernels.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CORPUS, PURE_NUMPY, built, native_paths, run_file
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wirewatch import decode as decode_module
from wirewatch import native
from wirewatch.detect.count import kernels
from wirewatch.detect.count.table import ROW

KEYS = arrays(np.uint64, st.integers(0, 3000), elements=st.integers(2, 2**64 - 1))
SMALL_KEYS = arrays(np.uint64, st.integers(0, 3000), elements=st.integers(2, 60))  # many repeats
RUNS = arrays(np.uint64, st.integers(0, 3000), elements=st.integers(2, 5)).map(np.sort)  # runs of one key


@pytest.fixture
def numpy_only(monkeypatch):
    """Call this to run the numpy references instead of the compiled decoder and loops."""
    def switch() -> None:
        monkeypatch.setattr(kernels, "_compiled", None)
        monkeypatch.setattr(decode_module, "_compiled", None)

    return switch


kernels_of = native_paths  # the block on the compiled kernels as built, or on their numpy references


def both(numpy_only, fn, *args):
    with native_paths(compiled=True):
        compiled = fn(*args)
    numpy_only()
    return compiled, fn(*args)


def test_extension_is_built():
    """`make setup` compiles the kernels; without them the bench numbers in README do not hold.
    They are built either way; WIREWATCH_PURE_NUMPY=1 chooses the numpy reference on purpose."""
    for name in native.MODULES:
        built(name)  # ImportError: not built (needs gcc and Python headers)
    assert kernels.COMPILED is not PURE_NUMPY and (decode_module._compiled is None) is PURE_NUMPY


@settings(max_examples=60, deadline=None)
@given(keys=st.one_of(KEYS, SMALL_KEYS, RUNS))
def test_group_matches_reference(keys):
    with kernels_of(compiled=True):
        compiled = kernels.group(keys)
    with kernels_of(compiled=False):
        reference = kernels.group(keys)
    for c, r in zip(compiled, reference):
        np.testing.assert_array_equal(c, r)
    order, starts, ends = compiled
    assert sorted(order.tolist()) == list(range(len(keys)))
    firsts = order[starts]
    assert np.all(np.diff(firsts) > 0)  # groups in order of first occurrence
    for s, e in zip(starts, ends):
        rows = order[s:e]
        assert np.all(keys[rows] == keys[rows[0]]) and np.all(np.diff(rows) > 0)
    assert len(set(keys.tolist())) == len(starts)


@settings(max_examples=60, deadline=None)
@given(keys=st.one_of(KEYS, SMALL_KEYS, RUNS))
def test_unique_matches_reference_and_group(keys):
    """unique: group's groups (first occurrence order) with each one's first and last row and
    count, compiled and numpy; calls of different sizes after one another (the compiled
    slots are kept from call to call) give the same as fresh ones."""
    with kernels_of(compiled=True):
        big = kernels.unique(np.arange(2, 5000, dtype=np.uint64))  # leaves larger, written slots behind
        compiled = kernels.unique(keys)
        order, starts, ends = kernels.group(keys)
    with kernels_of(compiled=False):
        reference = kernels.unique(keys)
    assert len(big[0]) == 4998
    for c, r in zip(compiled, reference):
        np.testing.assert_array_equal(c, r)
    uk, first, last, counts = compiled
    np.testing.assert_array_equal(uk, keys[order[starts]])
    np.testing.assert_array_equal(first, order[starts])
    np.testing.assert_array_equal(last, order[ends - 1])
    np.testing.assert_array_equal(counts, ends - starts)


@settings(max_examples=60, deadline=None)
@given(keys=st.one_of(KEYS, SMALL_KEYS), of=st.one_of(KEYS, SMALL_KEYS, arrays(np.uint64, st.integers(0, 50),
                                                                                elements=st.integers(0, 2**64 - 1))))
def test_isin_matches_reference(keys, of):
    with kernels_of(compiled=True):
        compiled = kernels.isin(keys, of)
    with kernels_of(compiled=False):
        reference = kernels.isin(keys, of)
    np.testing.assert_array_equal(compiled, reference)
    np.testing.assert_array_equal(compiled, np.array([k in set(of.tolist()) for k in keys.tolist()], bool))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64,
                                   np.uint64, np.bool_])
def test_hash_cols_matches_reference(numpy_only, dtype):
    rng = np.random.default_rng(7)
    col = rng.integers(0, 2 if dtype == np.bool_ else 255, 5000).astype(dtype)
    if np.issubdtype(dtype, np.signedinteger):
        col[::3] = -col[::3]  # negative values are sign-extended, as numpy's astype(uint64)
    other = rng.integers(0, 2**32, 5000, dtype=np.uint32)
    compiled, reference = both(numpy_only, kernels.hash_cols, col, other[::1])
    np.testing.assert_array_equal(compiled, reference)
    assert compiled.min() > kernels.TOMBSTONE


@pytest.mark.parametrize("types", ["Q", "QQ", "qQq", "QQQQ", "QQQQQ", "HQQQH", "QQQbQQQQ", "BQ", "QqH", "IQQQQQQQ",
                                   "?QQ", "hiQQQ", "bBhHiI", "qqqqqqqq"])
def test_hash_cols_of_mixed_columns_matches_reference(types):
    """Any sequence of column types (runs of up to four 8-byte columns are mixed in one loop,
    narrower ones one by one) gives the reference's keys, extreme values included."""
    rng = np.random.default_rng(len(types))
    cols = []
    for code in types:
        dtype = np.dtype(code)
        if dtype == np.bool_:
            cols.append(rng.integers(0, 2, 500).astype(np.bool_))
        else:
            info = np.iinfo(dtype)
            cols.append(rng.integers(info.min, info.max, 500, dtype=dtype, endpoint=True))
    compiled = kernels.hash_cols(*cols)
    with kernels_of(False):
        reference = kernels.hash_cols(*cols)
    np.testing.assert_array_equal(compiled, reference)


def test_hash_cols_takes_strided_columns(numpy_only):
    pairs = np.arange(20000, dtype=np.uint32).reshape(-1, 2)
    compiled, reference = both(numpy_only, kernels.hash_cols, pairs[:, 0], pairs[:, 1])
    np.testing.assert_array_equal(compiled, reference)
    assert len(np.unique(compiled)) == len(pairs)


@settings(max_examples=40, deadline=None)
@given(keys=KEYS, tombs=st.integers(0, 500))
def test_insert_then_find(keys, tombs):
    keys = np.unique(keys)
    nslots = 1 << max(4, (2 * len(keys) + 2 * tombs).bit_length())
    for compiled in (True, False):
        with kernels_of(compiled):
            table = np.zeros(nslots, np.uint64)
            table[np.random.default_rng(tombs).choice(nslots, tombs, replace=False)] = kernels.TOMBSTONE
            slots, reused = kernels.insert(table, keys)
            assert len(set(slots.tolist())) == len(keys)
            np.testing.assert_array_equal(table[slots], keys)
            assert reused == tombs - int(np.count_nonzero(table == kernels.TOMBSTONE))
            np.testing.assert_array_equal(kernels.find(table, keys), slots)
            absent = np.setdiff1d(np.arange(2, 3000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15), keys)
            assert np.all(kernels.find(table, absent) == -1)


LABELS = {p["file"]: p for p in json.loads((CORPUS / "labels.json").read_text())["pcaps"]}


@pytest.mark.parametrize("name", sorted(LABELS))
def test_pipeline_alerts_identical_without_extension(numpy_only, name):
    blocklist = {"detect.blacklist.files": [str(CORPUS / "blacklist.txt")]}

    def alerts() -> list[tuple]:
        found, _ = run_file(str(CORPUS / name), blocklist)
        return [(a["type"], a.get("src_ip"), a.get("dest_ip"), a["timestamp"], repr(a["evidence"])) for a in found]

    compiled, reference = both(numpy_only, alerts)
    assert compiled == reference
    assert bool(compiled) == ("none" not in LABELS[name]["expected_alerts"])


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-1, 7), st.integers(100, 130), st.integers(0, 1000)), max_size=200),
       wide=st.booleans())
def test_window_add_matches_reference(rows, wide):
    nslots, m, nb = 8, 2, 5
    slots = np.array([r[0] for r in rows], np.int64)
    buckets = np.array([r[1] for r in rows], np.int64)
    values = np.array([[r[2], 1] for r in rows], np.int64).reshape(-1, m)
    results = []
    for compiled in (True, False):
        with kernels_of(compiled):
            epoch = np.tile(110 + np.arange(nb), (nslots, 1))  # cells start holding buckets 110..114
            counts = np.ones((nslots, m, nb), np.int64 if wide else np.int32)
            kernels.window_add(epoch, counts, slots, buckets, values)
            results.append((epoch, counts))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    # rows in ascending bucket order: each cell holds its newest bucket's sum (+1 if unchanged)
    if rows and np.all(np.diff(buckets) >= 0):
        epoch, counts = results[0]
        for s in range(nslots):
            for r in range(nb):
                b = epoch[s, r]
                mine = (slots == s) & (buckets == b)
                assert counts[s, 1, r] == mine.sum() + (b == 110 + r)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 9), st.floats(-15.0, 16.0), st.integers(-5, 1000), st.booleans()),
                     max_size=200),
       slots=st.lists(st.integers(-2, 7), min_size=10, max_size=10), wide=st.booleans(), start=st.sampled_from([-5, 44]))
def test_window_add_rows_is_window_add_of_the_rows(rows, slots, wide, start):
    """window_add_rows (each row through its key's slot, its bucket from its time, a value
    column per metric, None for 0) leaves the rings exactly as window_add of the per-row
    slots, buckets and value matrix does, compiled and numpy: cells cleared for a newer
    bucket, rows older than their cell dropped, keys without a slot skipped."""
    nslots, nb, width = 8, 5, 2.5
    inverse = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.float64) + (0.0 if start < 0 else 115.0)  # around the cells' buckets
    amount = np.array([r[2] for r in rows], np.int64)
    flag = np.array([r[3] for r in rows], np.bool_)
    key_slots = np.array(slots, np.int64)
    values = [amount, None, flag]  # int64, a metric the rows do not give, bool
    m = len(values)
    matrix = np.zeros((len(rows), m), np.int64)
    for j, v in enumerate(values):
        matrix[:, j] = 0 if v is None else v
    results = []
    for compiled in (True, False):
        with kernels_of(compiled):
            for fused in (True, False):
                epoch = np.tile(start + np.arange(nb), (nslots, 1))  # cells start holding buckets start..start+4
                counts = np.ones((nslots, m, nb), np.int64 if wide else np.int32)
                if fused:
                    kernels.window_add_rows(epoch, counts, key_slots, inverse, ts, width, values)
                else:
                    kernels.window_add(epoch, counts, key_slots[inverse], np.floor(ts / width).astype(np.int64), matrix)
                results.append((epoch, counts))
    for epoch, counts in results[1:]:
        np.testing.assert_array_equal(results[0][0], epoch)
        np.testing.assert_array_equal(results[0][1], counts)


@settings(max_examples=40, deadline=None)
@given(first=st.lists(st.integers(2, 2**20), unique=True, max_size=50),
       second=st.lists(st.integers(2, 2**20), unique=True, max_size=50), gap=st.floats(0, 20))
def test_door_admit_matches_reference(first, second, gap):
    """Keys seen in two batches: the second sighting within the window comes back with the
    first sighting's time (keys on distinct slots: in-batch collisions may differ)."""
    bits = 22  # > the key range: no two keys share a slot
    results = []
    for compiled in (True, False):
        with kernels_of(compiled):
            door = (np.zeros(1 << bits, np.uint64), np.zeros(1 << bits))
            k1 = np.array(first, np.uint64)
            _, back1, _ = kernels.door_admit(*door, k1, np.full(len(k1), 100.0), 10.0)
            k2 = np.array(second, np.uint64)
            out = kernels.door_admit(*door, k2, np.full(len(k2), 100.0 + gap), 10.0)
            results.append((back1, *out, *door))
    for c, r in zip(*results):
        np.testing.assert_array_equal(c, r)
    _, slot, back, back_ts, *_ = results[0]
    np.testing.assert_array_equal(back, np.isin(second, first) & (gap <= 10.0))
    assert np.all(back_ts[back] == 100.0)


def test_missing_extension_is_announced_and_reported(monkeypatch, capsys, tmp_path):
    from wirewatch import cli

    def not_built(name):
        raise ImportError(name)

    monkeypatch.chdir(tmp_path)  # the default config writes var/ and alerts.json here
    monkeypatch.delenv("WIREWATCH_PURE_NUMPY", raising=False)  # not asked for: the build is missing
    monkeypatch.setattr(native.importlib, "import_module", not_built)
    assert native.active() is False and "not built" in (native.warning() or "")
    assert cli.main(["read", str(CORPUS / "dev21_benign_dns.pcap"), "--quiet", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert "compiled hot path (wirewatch.native) is not built" in out.err
    assert '"compiled_hot_path": false' in out.out
    monkeypatch.setenv("WIREWATCH_PURE_NUMPY", "1")  # asked for: no warning
    assert native.warning() is None


def test_compiled_hot_path_is_reported_when_built(monkeypatch, capsys, tmp_path):
    """What runs is what a user reads, without a warning: the compiled path where it is built,
    the numpy reference under WIREWATCH_PURE_NUMPY=1 (the JSON summary, the stats event the
    store keeps and /metrics' gauge, 0 = the slower numpy reference)."""
    from wirewatch import cli
    from wirewatch.web import create_app

    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "w.db")
    assert cli.main(["read", str(CORPUS / "dev21_benign_dns.pcap"), "--quiet", "--format", "json", "--db", db]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["compiled_hot_path"] is not PURE_NUMPY
    assert "not built" not in out.err
    client = create_app(db, "kernels-token").test_client()
    metrics = client.get("/metrics", headers={"Authorization": "Bearer kernels-token"}).get_data(as_text=True)
    assert f"wirewatch_compiled_hot_path {int(not PURE_NUMPY)}" in metrics.splitlines()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), current=st.integers(95, 130), wide=st.booleans())
def test_window_totals_matches_reference(seed, current, wide):
    rng = np.random.default_rng(seed)
    nslots, m, nb = 16, 3, 5
    epoch = rng.integers(90, 131, (nslots, nb)).astype(np.int64)
    counts = rng.integers(0, 1000, (nslots, m, nb)).astype(np.int64 if wide else np.int32)
    slots = rng.integers(0, nslots, 40)
    with kernels_of(compiled=True):
        compiled = kernels.window_totals(epoch, counts, slots, current)
    with kernels_of(compiled=False):
        reference = kernels.window_totals(epoch, counts, slots, current)
    np.testing.assert_array_equal(compiled, reference)
    s = int(slots[0])
    live = [r for r in range(nb) if current - nb < epoch[s, r] <= current]
    assert compiled[0].tolist() == [int(counts[s, j, live].sum()) for j in range(m)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_hll_add_matches_reference(seed):
    rng = np.random.default_rng(seed)
    m, nslots, n = 64, 6, 500
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n).astype(np.uint64)
    hashes[:20] = (np.uint64(1) << rng.integers(6, 64, 20).astype(np.uint64)) - np.uint64(1)  # bit-length edges
    slots = rng.integers(-1, nslots, n)
    epochs = np.sort(rng.integers(100, 104, n))  # packet order: half-windows only move forward
    results = []
    for compiled in (True, False):
        with kernels_of(compiled):
            regs = np.full((nslots, 2 * m), 3, np.uint8)
            epoch = np.full((nslots, 2), 100, np.int64)
            kernels.hll_add(regs, epoch, slots, hashes, epochs)
            results.append((regs, epoch))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][0].max() <= 64 - 6 + 1


def test_hll_estimates_distinct_counts():
    from wirewatch.detect.count import hll

    counter = hll.WindowedHLL(10.0)
    cols = {name: np.zeros((1, *np.atleast_1d(width)), dtype) for name, (dtype, width) in hll.COLUMNS.items()}
    items = kernels.hash_cols(np.arange(20_000, dtype=np.uint64))
    counter.add(cols, np.zeros(len(items), np.int64), np.concatenate([items[:10_000]] * 2)[:20_000], np.full(20_000, 1000.0))
    est = counter.estimate(cols, np.array([0]), 1000.0)[0]
    assert abs(est - 10_000) / 10_000 < 0.15  # 10,000 distinct among 20,000 rows (~4.6 % error expected)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["upsert", "remove", "expire"]),
                              st.lists(st.integers(2, 400), max_size=60)), max_size=30),
       compiled=st.booleans())
def test_key_table_against_a_dict(ops, compiled):
    """KeyTable's rows and index agree with a plain dict through inserts, removals, expiry
    and capacity eviction; rows never exceed the capacity."""
    from wirewatch.detect.count.table import KeyTable

    with kernels_of(compiled):
        table = KeyTable(100, {"v": (np.int64, 1)})
        model: dict[int, int] = {}  # key -> value stored in column v
        for step, (op, raw) in enumerate(ops):
            keys = np.unique(np.array(raw, np.uint64))
            if op == "upsert":
                slots, new, gone = table.upsert(keys, np.full(len(keys), float(step)))
                for k in gone.get("_key", np.zeros(0, np.uint64)).tolist():
                    model.pop(k, None)
                ok = slots >= 0
                table.cols["v"][slots[ok]] = keys[ok].astype(np.int64) * 7
                model.update({int(k): int(k) * 7 for k in keys[ok].tolist()})
            elif op == "remove":
                rows = table.find(keys)
                table.remove(np.unique(rows[rows >= 0]))
                for k in keys.tolist():
                    model.pop(int(k), None)
            else:
                gone = table.expire(float(step) - 3)
                for k in gone.get("_key", np.zeros(0, np.uint64)).tolist():
                    model.pop(k, None)
            assert table.size == len(model) <= table.capacity
            assert table.used <= table.capacity
            present = np.array(sorted(model), np.uint64)
            rows = table.find(present)
            assert np.all(rows >= 0) and len(set(rows.tolist())) == len(rows)
            assert table.cols["v"][rows].tolist() == [model[k] for k in sorted(model)]
            assert sorted(table.keys[table.occupied()].tolist()) == sorted(model)


@settings(max_examples=60, deadline=None)
@given(present=st.lists(st.integers(2, 5000), max_size=120, unique=True),
       asked=st.lists(st.integers(2, 5000), max_size=120, unique=True),
       nfree=st.integers(0, 40), max_new=st.integers(-1, 130), seed=st.integers(0, 1000))
def test_upsert_matches_reference(present, asked, nfree, max_new, seed):
    """The fused find-or-insert gives the rows, new flags, last_seen and row bookkeeping of
    its numpy reference (find, then insert), and changes nothing when more than max_new
    keys are absent."""
    rng = np.random.default_rng(seed)
    cap, nslots = 512, 1024
    present_keys = np.array(present, np.uint64) * np.uint64(0x9E3779B97F4A7C15) | np.uint64(2)
    asked_keys = np.array(asked, np.uint64) * np.uint64(0x9E3779B97F4A7C15) | np.uint64(2)
    ts = rng.uniform(0, 100, len(asked_keys))
    used = 200
    rows_held = rng.permutation(used)[:len(present_keys)]
    seen = rng.uniform(0, 100, len(present_keys))
    states = []
    for compiled in (True, False):
        with kernels_of(compiled):
            index_keys, index_rows = np.zeros(nslots, np.uint64), np.zeros(nslots, ROW)
            row_keys, slot_of, last_seen = np.zeros(cap, np.uint64), np.zeros(cap, ROW), np.full(cap, np.inf)
            slots, _ = kernels.insert(index_keys, present_keys)
            index_rows[slots] = rows_held
            row_keys[rows_held], slot_of[rows_held] = present_keys, slots
            last_seen[rows_held] = seen
            free = np.zeros(cap, ROW)
            free[:nfree] = np.setdiff1d(np.arange(used), rows_held)[:nfree]
            before = (index_keys.copy(), row_keys.copy(), last_seen.copy())
            rows, is_new, done = kernels.upsert(index_keys, index_rows, row_keys, slot_of, free, last_seen,
                                                asked_keys, ts, nfree, used, max_new)
            absent = ~np.isin(asked_keys, present_keys)
            if int(absent.sum()) > max_new:
                assert done is None
                np.testing.assert_array_equal(rows < 0, absent)
                for a, b in zip(before, (index_keys, row_keys, last_seen)):
                    np.testing.assert_array_equal(a, b)
            else:
                assert done is not None and done[0] == int(absent.sum())
                np.testing.assert_array_equal(is_new, absent)
                np.testing.assert_array_equal(kernels.find(index_keys, asked_keys, index_rows), rows)
                np.testing.assert_array_equal(row_keys[rows], asked_keys)
                np.testing.assert_array_equal(index_keys[slot_of[rows]], asked_keys)
            states.append((rows.tolist(), is_new.tolist(), done, row_keys.tolist(), last_seen.tolist()))
    assert states[0] == states[1]
