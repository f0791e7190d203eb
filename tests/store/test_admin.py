"""store/admin.py: the dashboard's triage writes (acknowledge, mute, unmute) on either
store: short transactions, refused values named, nothing half-done after an error."""

from __future__ import annotations

import time

import pytest
from conftest import store_sink
from store_fixtures import SCANNER, engine_records

from wirewatch.store.admin import PostgresTriage, Triage, open_triage
from wirewatch.store.queries import AlertFilter, QueryError, open_store


@pytest.fixture
def triage(store_url, tmp_path):
    sink = store_sink(store_url, tmp_path)
    sink.write(engine_records(tmp_path)[0])
    sink.close()
    t = open_triage(store_url)
    yield t
    t.close()


def test_open_triage_picks_the_backend(triage, store_url):
    assert type(triage) is (PostgresTriage if store_url.startswith("postgresql://") else Triage)


def test_acknowledge_marks_the_given_alerts_and_counts_them(triage, store_url):
    q = open_store(store_url)
    ids = [a["id"] for a in q.alerts(AlertFilter())]
    assert triage.acknowledge(ids[:2]) == 2 and triage.acknowledge([]) == 0 and triage.acknowledge([10**9]) == 0
    assert {a["id"] for a in q.alerts(AlertFilter(acknowledged=True))} == set(ids[:2])
    assert triage.acknowledge(ids[:1], value=False) == 1
    assert {a["id"] for a in q.alerts(AlertFilter(acknowledged=True))} == {ids[1]}
    q.close()


def test_a_mute_is_stored_and_reaches_the_sensors_sink(triage, store_url, tmp_path):
    mid = triage.mute("port_scan", f" {SCANNER}/32 ", time.time() + 3600, reason="pentest " + "x" * 300)
    q = open_store(store_url)
    [m] = q.mutes()
    assert m["id"] == mid and m["cidr"] == f"{SCANNER}/32" and m["active"] and len(m["reason"]) == 200
    (tmp_path / "again").mkdir()
    sink = store_sink(store_url, tmp_path / "again")
    alerts = sink.filter(engine_records(tmp_path / "again")[0])  # the same scenario once more
    assert {a["src_ip"]: a.get("muted") for a in alerts if a["type"] == "port_scan"}[SCANNER] == mid
    assert all(a.get("muted") is None for a in alerts if a["src_ip"] != SCANNER)
    assert triage.unmute(mid) == 1 and triage.unmute(mid + 1000) == 0
    assert not q.mutes()[0]["active"]
    q.close()
    sink.close()


@pytest.mark.parametrize("args, message", [
    (("port_scan", "10.0.0.300", 60), "cidr: not an address or CIDR: '10.0.0.300'"),
    (("port_scan", "10.10.0.66/24", 60), "cidr: '10.10.0.66/24' has host bits set (a prefix is written with its "
                                          "network address): 10.10.0.0/24 for the /24, or 10.10.0.66 for the one "
                                          "address"),  # main: stored as written, muting 10.10.0.0/24
    (("port_scan", "10.0.0.0/8", -60), "until: must be in the future"),
    (("", "10.0.0.0/8", 60), "type: required"),
])
def test_a_bad_mute_names_the_field_and_stores_nothing(triage, store_url, args, message):
    kind, cidr, ahead = args
    with pytest.raises(QueryError) as exc:
        triage.mute(kind, cidr, time.time() + ahead)
    assert str(exc.value).startswith(message)
    q = open_store(store_url)
    assert q.mutes() == []
    q.close()


def test_an_error_inside_a_transaction_rolls_it_back(triage, store_url):
    ids = [a["id"] for a in open_store(store_url).alerts(AlertFilter())]
    with pytest.raises(RuntimeError), triage._transaction() as c:
        c.execute("UPDATE alerts SET acknowledged = 1 WHERE id = ?", (ids[0],))
        raise RuntimeError("the request failed half-way")
    q = open_store(store_url)
    assert q.alerts(AlertFilter(acknowledged=True)) == []
    assert triage.acknowledge(ids[:1]) == 1  # no transaction left open
    q.close()
