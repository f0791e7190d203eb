"""The spool: durable, in order, replayed once, nothing stored twice (store/spool.py)."""

from __future__ import annotations

import json

import pytest

from wirewatch.store.spool import Delivery, Entry, Spool, StoreAhead


class Busy(Exception):
    """What a backend raises while it cannot take writes."""


class Backend:
    """A store that keeps rows by uid (as the SQLite and PostgreSQL sinks do) and can be made busy."""

    def __init__(self):
        self.rows: list[dict] = []
        self.uids: set[str] = set()
        self.busy = False
        self.fail_after: int | None = None  # commit this many calls, then fail once after committing

    def write(self, entries: list[Entry]) -> None:
        if self.busy:
            raise Busy("database is locked")
        for e in entries:
            if e.uid is not None and e.uid in self.uids:
                continue
            self.rows.append(e.record)
            if e.uid is not None:
                self.uids.add(e.uid)
        if self.fail_after is not None:
            self.fail_after -= 1
            if self.fail_after < 0:
                self.fail_after = None
                raise KeyboardInterrupt  # killed after the commit, before the progress was saved


def recs(lo: int, hi: int) -> list[dict]:
    return [{"event_type": "alert", "n": i} for i in range(lo, hi)]


def test_spooled_records_replay_in_order_after_the_store_returns(tmp_path):
    clock = [0.0]
    store = Backend()
    d = Delivery(store.write, Spool(str(tmp_path / "s.spool")), (Busy,), clock=lambda: clock[0], sleep=lambda s: None)
    d.deliver(recs(0, 10))
    store.busy = True
    d.deliver(recs(10, 20))  # retried, then spooled
    store.busy = False
    d.deliver(recs(20, 30))  # before the next probe: spooled behind the others, order kept
    assert [r["n"] for r in store.rows] == list(range(10))
    assert d.stats()["spooled"] == 20 and d.stats()["spool_pending"] == 20
    clock[0] += 10
    d.deliver(recs(30, 40))
    assert [r["n"] for r in store.rows] == list(range(40))
    assert d.stats() | {"store_errors": 0} == {"spooled": 20, "replayed": 20, "spool_pending": 0, "store_errors": 0,
                                               "spool_damaged": 0, "spool_dropped": 0}
    assert d.stats()["store_errors"] == 4  # the first try and three retries of one batch


def test_a_spool_left_by_a_crash_is_replayed_by_the_next_run_exactly_once(tmp_path):
    path = str(tmp_path / "s.spool")
    spool = Spool(path)
    spool.append(recs(0, 12000))
    store = Backend()
    store.fail_after = 1  # the second chunk commits, then the process dies before saving its offset
    with pytest.raises(KeyboardInterrupt):
        spool.replay(store.write, chunk=5000)
    again = Spool(path)  # the next start
    assert again.pending == 7000
    again.replay(store.write, chunk=5000)
    assert [r["n"] for r in store.rows] == list(range(12000))
    assert again.pending == 0 and Spool(path).pending == 0


def test_a_torn_last_line_is_cut_off_and_counted(tmp_path):
    path = tmp_path / "s.spool"
    Spool(str(path)).append(recs(0, 3))
    with open(path, "ab") as fh:
        fh.write(b'{"uid": "x-1", "record": {"n"')  # power cut mid-append
    spool = Spool(str(path))
    assert spool.pending == 3 and spool.damaged == 1
    spool.append(recs(3, 5))
    store = Backend()
    spool.replay(store.write)
    assert [r["n"] for r in store.rows] == list(range(5))
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_flush_at_shutdown_leaves_what_the_store_refuses_in_the_file(tmp_path):
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    store = Backend()
    store.busy = True
    path = str(tmp_path / "s.spool")
    d = Delivery(store.write, Spool(path), (Busy,), clock=lambda: clock[0], sleep=sleep)
    d.deliver(recs(0, 5))
    assert d.flush(deadline_s=2.0) is False and clock[0] < 5
    assert Spool(path).pending == 5
    store.busy = False
    assert d.flush() is True and [r["n"] for r in store.rows] == list(range(5))


def test_a_bug_in_the_backend_is_not_mistaken_for_a_busy_store(tmp_path):
    def broken(entries):
        raise KeyError("type")

    d = Delivery(broken, Spool(str(tmp_path / "s.spool")), (Busy,))
    with pytest.raises(KeyError):
        d.deliver(recs(0, 1))
    assert d.spool.pending == 0


def test_two_processes_sharing_a_spool_lose_nothing(tmp_path):
    """A `read --db` beside a running sensor: one replays (and truncates) what both appended."""
    path = str(tmp_path / "s.spool")
    first, second = Spool(path), Spool(path)
    first.append(recs(0, 3))
    second.append(recs(3, 5))
    store = Backend()
    assert first.replay(store.write) == 5
    assert second.replay(store.write) == 0
    first.append(recs(5, 6))
    second.pending = 1
    second.replay(store.write)
    assert [r["n"] for r in store.rows] == list(range(6))


def test_a_full_spool_drops_in_order_says_so_once_and_counts_and_takes_again_after_replay(tmp_path):
    """store.spool_max_mb: the spool never grows past its bound; what does not fit (and
    everything after it, so the store keeps a gap-free prefix) is dropped and counted, said
    once; after a replay the spool takes records again."""
    import io
    backend = Backend()
    backend.busy = True
    spool = Spool(str(tmp_path / "s.spool"), max_bytes=4000)
    log = io.StringIO()
    d = Delivery(backend.write, spool, (Busy,), sleep=lambda s: None, clock=lambda: 0.0, log=log)
    for lo in range(0, 400, 20):
        d.deliver(recs(lo, lo + 20))
    size = (tmp_path / "s.spool").stat().st_size
    assert 0 < size <= 4000
    kept = spool.pending
    assert 0 < kept < 400 and spool.dropped == 400 - kept and d.stats()["spool_dropped"] == 400 - kept
    assert log.getvalue().count("is full") == 1 and "store.spool_max_mb" in log.getvalue()
    backend.busy = False
    d._next_probe = 0.0
    d.deliver(recs(400, 410))  # replays the spool, then stores these
    assert [r["n"] for r in backend.rows] == list(range(kept)) + list(range(400, 410))
    backend.busy = True
    d.deliver(recs(410, 412))  # the spool takes records again
    assert spool.pending == 2 and spool.dropped == 400 - kept


def test_a_store_ahead_of_the_writer_keeps_everything_in_the_spool_and_is_never_written_again(tmp_path):
    """StoreAhead (a newer wirewatch migrated the store) while a spool is replayed: nothing more
    is attempted, that batch and every later one are spooled behind the rest, flush gives up at
    once; the upgraded writer's Delivery stores them all, in order."""
    store, ahead, calls, clock = Backend(), [False], [0], [0.0]

    def write(entries: list[Entry]) -> None:
        calls[0] += 1
        if ahead[0]:
            raise StoreAhead(16, 15)
        store.write(entries)

    path = str(tmp_path / "s.spool")
    d = Delivery(write, Spool(path), (Busy,), clock=lambda: clock[0], sleep=lambda s: None)
    store.busy = True
    d.deliver(recs(0, 10))  # spooled
    store.busy, ahead[0] = False, True
    clock[0] += 10
    d.deliver(recs(10, 20))  # the replay finds the store ahead
    assert d.halted == "the store's schema is version 16, newer than this wirewatch knows (15): a newer wirewatch migrated it"
    attempts = calls[0]
    d.deliver(recs(20, 30))
    assert d.flush() is False and calls[0] == attempts  # never tried again
    assert store.rows == [] and d.spool.pending == 30
    ahead[0] = False
    assert Delivery(write, Spool(path), (Busy,), sleep=lambda s: None).flush()
    assert [r["n"] for r in store.rows] == list(range(30))

