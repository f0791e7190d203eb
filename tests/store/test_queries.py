"""store/queries.py: the dashboard's reads, one set of SQL over SQLite and PostgreSQL, on
alerts the real engine raised and wrote through the sensor's own sink."""

from __future__ import annotations

import pytest
from conftest import store_sink
from store_fixtures import SCANNER, SCANNER6, SWEEPER, VICTIM, VICTIM6, engine_records

from wirewatch.store.postgres_schema import is_postgres
from wirewatch.store.queries import AlertFilter, PostgresStore, QueryError, Store, near_miss_entries, open_store
from wirewatch.store.search import catch_up


@pytest.fixture
def store(store_url, tmp_path):
    """Two sensors' alerts and stats events, then the read-only store the dashboard opens."""
    sink = store_sink(store_url, tmp_path)
    for sensor in ("edge-a", "edge-b"):
        alerts, stats = engine_records(tmp_path, sensor)
        sink.write(sink.filter(alerts))
        sink.write_event(stats)
    sink.close()
    if not is_postgres(store_url):
        catch_up(store_url)  # SQLite's text index is the dashboard's to fill (create_app, serve)
    q = open_store(store_url)
    yield q
    q.close()


def test_open_store_picks_the_backend_by_url(store, store_url):
    assert isinstance(store, PostgresStore if store_url.startswith("postgresql://") else Store)


def test_filters_by_type_sensor_address_and_cidr(store):
    every = store.alerts(AlertFilter())
    assert len(every) == 6 and [a["id"] for a in every] == sorted((a["id"] for a in every), reverse=True)
    assert {a["type"] for a in store.alerts(AlertFilter(type="host_sweep"))} == {"host_sweep"}
    assert len(store.alerts(AlertFilter(type="port_scan"))) == 4
    assert {a["sensor"] for a in store.alerts(AlertFilter(sensor="edge-b"))} == {"edge-b"}
    assert {a["src_ip"] for a in store.alerts(AlertFilter(src=SCANNER))} == {SCANNER}
    assert {a["src_ip"] for a in store.alerts(AlertFilter(src="10.0.0.0/24"))} == {SWEEPER}
    assert {a["src_ip"] for a in store.alerts(AlertFilter(src="10.0.0.0/8"))} == {SCANNER, SWEEPER}
    assert {a["dest_ip"] for a in store.alerts(AlertFilter(dest="fd00::/64"))} == {VICTIM6}
    assert {a["dest_ip"] for a in store.alerts(AlertFilter(dest=VICTIM))} == {VICTIM}
    assert len(store.alerts(AlertFilter(port=22))) == 2 and store.alerts(AlertFilter(port=23)) == []
    assert len(store.alerts(AlertFilter(severity=3))) == 6 and store.alerts(AlertFilter(severity=1)) == []
    assert [a["src_ip"] for a in store.alerts(AlertFilter(q=SCANNER6))] == [SCANNER6, SCANNER6]


def test_bad_filters_name_their_field(store):
    for f, field in ((AlertFilter(src="10.0.0.300"), "src"), (AlertFilter(dest="not/an/address"), "dest")):
        with pytest.raises(QueryError, match=rf"^{field}: not an address or CIDR"):
            store.alerts(f)
    with pytest.raises(QueryError, match="^src: not an address"):
        store.incident("nope")


def test_keyset_pages_cover_every_alert_once(store):
    seen, before = [], None
    while True:
        page = store.alerts(AlertFilter(limit=4, before=before))
        if not page:
            break
        seen += [a["id"] for a in page]
        before = page[-1]["id"]
    assert seen == [a["id"] for a in store.alerts(AlertFilter(limit=100))] and len(set(seen)) == 6
    newest = store.latest_id()
    assert newest == seen[0] and store.alerts(AlertFilter(after=newest)) == []
    assert [a["id"] for a in store.alerts(AlertFilter(after=newest - 2))] == [newest, newest - 1]


def test_one_alert_carries_its_record(store):
    a = store.alert(store.latest_id())
    assert a["record"]["type"] == a["type"] and a["record"]["host"] == a["sensor"] == "edge-b"
    assert store.alert(store.latest_id() + 1) is None


def test_overview_sensors_and_incidents_from_the_roll_ups(store):
    o = store.overview()
    assert o["total_alerts"] == 6 and o["alerts_by_type"] == {"port_scan": 4, "host_sweep": 2}
    assert sum(m["alerts"] for m in o["alerts_per_minute"]) == 6
    assert {s["src_ip"]: s["count"] for s in o["top_sources"]} == {SCANNER: 2, SWEEPER: 2, SCANNER6: 2}
    one = store.overview(sensor="edge-a")
    assert one["total_alerts"] == 3 and one["sensor"] == "edge-a" and one["health"]["sensor"] == "edge-a"
    assert one["health"]["offline"] is False and one["health"]["uptime_s"] == 1  # a sensor's stats (no timeline)
    assert store.sensor_names() == ["edge-a", "edge-b"]
    health = {s["sensor"]: s for s in store.sensors()}
    assert health["edge-a"]["packets"] == 130 and health["edge-a"]["alerts"] == 3 and health["edge-b"]["final"]
    inc = {i["src_ip"]: i for i in store.incidents()}
    assert set(inc) == {SCANNER, SWEEPER, SCANNER6}
    assert inc[SCANNER]["alerts"] == 2 and inc[SCANNER]["sensors"] == {"edge-a": 1, "edge-b": 1}
    assert [a["type"] for a in store.incident(SCANNER)] == ["port_scan", "port_scan"]
    assert {i["src_ip"] for i in store.incidents(sensor="edge-b", limit=2)} <= set(inc)
    assert store.counts_by_type() == {"port_scan": 4, "host_sweep": 2}
    assert store.latest_stats()["host"] == "edge-b"


def test_near_miss_entries_keep_only_well_formed_ones_highest_first():
    good = {"detector": "port_scan", "text": "a: 14 of 20", "fraction": 0.7}
    raw = [good, good | {"fraction": 0.9, "text": "b"}, good | {"fraction": 1.0}, good | {"fraction": 0.49},
           good | {"fraction": True}, good | {"text": 3}, {"detector": "x"}, "junk"]
    assert [e["fraction"] for e in near_miss_entries(raw)] == [0.9, 0.7]
    assert near_miss_entries({"not": "a list"}) == [] and near_miss_entries(None) == []


def test_the_dashboards_store_is_read_only(store):
    with pytest.raises(Exception, match="(?i)read-?only") as exc:  # sqlite3.OperationalError / psycopg's
        store.conn.execute("DELETE FROM alerts")
    assert type(exc.value).__name__ in ("OperationalError", "ReadOnlySqlTransaction")
    assert len(store.alerts(AlertFilter())) == 6


def test_owners_of_many_addresses_in_one_read_each_side(store_url, tmp_path):
    """owners() (the overview's top sources) answers as owner() one address at a time: the
    enrichment of the address's latest alert as source, else as destination; {} when neither
    carries one. Two statements however many addresses (the overview made two per address)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))
    from dashboard_fixtures import fake_alert

    gb, us, nl, fr = ({"country": c} for c in ("GB", "US", "NL", "FR"))
    rows = [fake_alert(0, src_ip="81.2.69.160", dest_ip="8.8.8.8", enrichment={"src": gb, "dest": fr}),
            fake_alert(1, src_ip="81.2.69.160", dest_ip="10.0.0.1", enrichment={"src": nl}),  # the latest wins
            fake_alert(2, src_ip="10.9.9.9", dest_ip="8.8.8.8", enrichment={"dest": us}),  # as destination only
            fake_alert(3, src_ip="192.0.2.7", dest_ip="10.0.0.1")]  # never enriched
    sink = store_sink(store_url, tmp_path)
    sink.write(rows)
    sink.close()
    ips = ["81.2.69.160", "8.8.8.8", "192.0.2.7", "10.0.0.1", "203.0.113.1", "81.2.69.160"]
    q = open_store(store_url)
    try:
        seen: list[str] = []
        real = q._rows
        q._rows = lambda sql, args=(): seen.append(sql) or real(sql, args)  # type: ignore[method-assign]
        got = q.owners(ips)
        assert len(seen) == 2
        one_by_one = {ip: q.owner(ip) for ip in ips}
    finally:
        q.close()
    assert got == one_by_one == {"81.2.69.160": nl, "8.8.8.8": us, "192.0.2.7": {}, "10.0.0.1": {}, "203.0.113.1": {}}


def test_the_overview_of_a_store_with_more_sensors_than_one_compound_select_takes(store_url, tmp_path):
    """The sensors' last stats events are read in one UNION ALL (a term per sensor), and SQLite
    takes at most 500 terms in one compound SELECT: a store that more than 500 sensors had
    written to answered every overview with 'too many terms in compound SELECT'."""
    import copy

    _, stats = engine_records(tmp_path, "edge-0")
    sink = store_sink(store_url, tmp_path)
    names = [f"edge-{i:03d}" for i in range(520)]
    for i, name in enumerate(names):
        event = copy.deepcopy(stats)
        event["host"] = name
        event["stats"]["decoder"]["pkts"] = 1000 + i
        sink.write_event(event)
    sink.close()
    q = open_store(store_url)
    try:
        fleet = q.overview()
        one = q.overview(sensor="edge-007")
    finally:
        q.close()
    assert fleet["health"]["sensor"] == names[-1] and fleet["health"]["packets"] == 1519
    assert one["health"]["sensor"] == "edge-007" and one["health"]["packets"] == 1007
