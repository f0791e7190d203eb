"""Every bad API value is a 400 whose message names the field, never a 500, and
nothing out of range is stored (a 1e308-hour mute used to break the Mutes page)."""

from __future__ import annotations

import pytest
from dashboard_fixtures import TOKEN, csrf, fake_alert, login, store_with_alerts

from wirewatch.web import create_app

HUGE = "9" * 30


@pytest.fixture
def client(tmp_path):
    return login(create_app(store_with_alerts(str(tmp_path / "ww.db"), 20), TOKEN).test_client())


@pytest.mark.parametrize("query, field", [
    (f"before={HUGE}", "before"), (f"after=-{HUGE}", "after"), (f"port={HUGE}", "port"), ("port=70000", "port"),
    (f"severity={HUGE}", "severity"), (f"limit={HUGE}", "limit"), ("since=nan", "since"), ("until=inf", "until"),
    ("since=1e308", "since"), ("q=" + "a" * 100_000, "q"), ("src=" + "1" * 5000, "src"), ("dest=not-an-ip", "dest"),
    ("acknowledged=maybe", "acknowledged"), ("port=²", "port"), ("sensor=" + "s" * 500, "sensor"),
])
def test_bad_alert_filters_are_400_naming_the_field(client, query, field):
    r = client.get(f"/api/alerts?{query}")
    assert r.status_code == 400, (query, r.status_code)
    assert r.get_json()["error"].startswith(f"{field}:"), r.get_json()


@pytest.mark.parametrize("url", [f"/api/alerts/{HUGE}", f"/alerts/{HUGE}"])
def test_out_of_range_alert_ids_are_not_found(client, url):
    assert client.get(url).status_code == 404


def _mute(client, body):
    return client.post("/api/mutes", json=body, headers={"X-CSRF-Token": csrf(client)})


@pytest.mark.parametrize("change, field", [
    ({"hours": "nan"}, "hours"), ({"hours": 1e308}, "hours"), ({"hours": float("inf")}, "hours"),
    ({"hours": -1}, "hours"), ({"hours": [1]}, "hours"), ({"type": "no_such_detector"}, "type"), ({"type": ""}, "type"),
    ({"dest_port": 70000}, "dest_port"), ({"dest_port": int(HUGE)}, "dest_port"), ({"dest_port": True}, "dest_port"),
    ({"cidr": "10.0.0.0/33"}, "cidr"), ({"cidr": 12}, "cidr"), ({"reason": "x" * 5000}, "reason"),
])
def test_bad_mutes_are_400_naming_the_field_and_not_stored(client, change, field):
    body = {"type": "port_scan", "cidr": "10.0.0.0/24", "hours": 2, "dest_port": 80, "reason": "test"} | change
    r = _mute(client, body)
    assert r.status_code == 400, (change, r.status_code)
    assert r.get_json()["error"].startswith(f"{field}:"), r.get_json()
    assert client.get("/api/mutes").get_json()["mutes"] == []
    assert client.get("/mutes").status_code == 200


def test_good_mute_is_stored(client):
    assert _mute(client, {"type": "port_scan", "cidr": "10.0.0.0/24", "hours": 2, "dest_port": 443}).status_code == 201
    assert _mute(client, {"type": "*", "cidr": "10.0.0.1"}).status_code == 201
    mutes = client.get("/api/mutes").get_json()["mutes"]
    assert [(m["type"], m["dest_port"]) for m in mutes] == [("*", None), ("port_scan", 443)]


def test_a_body_that_is_not_an_object_is_400(client):
    h = {"X-CSRF-Token": csrf(client)}
    for url in ("/api/mutes", "/api/alerts/ack"):
        r = client.post(url, json=[1, 2], headers=h)
        assert r.status_code == 400 and r.get_json()["error"].startswith("body:"), url


@pytest.mark.parametrize("body, field", [
    ({"ids": [int(HUGE)]}, "ids"), ({"ids": [True]}, "ids"), ({"ids": "1,2"}, "ids"), ({"ids": [1.5]}, "ids"),
    ({"ids": list(range(1, 40_000))}, "ids"), ({"ids": [1], "acknowledged": "sure"}, "acknowledged"),
])
def test_bad_acknowledgements_are_400_naming_the_field(client, body, field):
    r = client.post("/api/alerts/ack", json=body, headers={"X-CSRF-Token": csrf(client)})
    assert r.status_code == 400 and r.get_json()["error"].startswith(f"{field}:"), (body, r.get_json())


def test_acknowledge_and_unmute_still_work(client):
    h = {"X-CSRF-Token": csrf(client)}
    assert client.post("/api/alerts/ack", json={"ids": [1, 2]}, headers=h).get_json() == {"updated": 2}
    assert client.get("/api/alerts?acknowledged=true").get_json()["alerts"][0]["id"] == 2
    assert client.post(f"/api/mutes/{HUGE}/end", headers=h).status_code == 400


@pytest.mark.parametrize("src", ["not-an-ip", "<script>alert(1)</script>", "10.0.0.999", "1" * 5000])
def test_an_incident_names_an_address_or_is_a_400(client, src):
    for url in (f"/api/incidents/{src}", f"/incidents/{src}"):
        r = client.get(url)
        assert r.status_code == 400, (url, r.status_code)
        assert b"src:" in r.data, r.data[:200]


def test_an_incident_of_a_real_address_is_served(client):
    src = fake_alert(0)["src_ip"]
    assert client.get(f"/api/incidents/{src}").get_json()["src_ip"] == src
    assert client.get(f"/incidents/{src}").status_code == 200


KNOWN = ("blacklist, distributed_scan, failed_handshake, host_sweep, port_scan, suspicious_port, syn_flood, "
         "traffic_burst, unusual_protocol")


@pytest.mark.parametrize("query, error", [
    # an unknown type matched nothing, 200 and an empty page (a typo looked like "no such alerts")
    ("type=nosuchtype", f"type: no alert type 'nosuchtype' (one of {KNOWN})"),
    ("type=PORT_SCAN", f"type: no alert type 'PORT_SCAN' (one of {KNOWN})"),
    ("type=%27%3B%20DROP%20TABLE%20alerts%3B--", f"type: no alert type \"'; DROP TABLE alerts;--\" (one of {KNOWN})"),
    # ipaddress kept the zone: the filter matched nothing, 200
    ("src=fe80::1%25eth0", "src: an IPv6 zone (%eth0) has no meaning here: 'fe80::1%eth0'"),
    ("dest=fe80::%25lo/64", "dest: an IPv6 zone (%lo/64) has no meaning here: 'fe80::%lo/64'"),
    # float() reads other scripts' digits: since=٣ was the time 3, 200
    ("since=%D9%A3", "since: not a number: '٣'"),
    ("src=%ff", "src: not an address or CIDR: '%FF'"),
])
def test_more_bad_alert_filters_are_400_with_the_value(client, query, error):
    r = client.get(f"/api/alerts?{query}")
    assert (r.status_code, r.get_json()) == (400, {"error": error})


def test_a_known_type_and_an_address_still_filter(client):
    r = client.get("/api/alerts?type=port_scan&src=10.0.0.0/8")
    assert r.status_code == 200 and all(a["type"] == "port_scan" for a in r.get_json()["alerts"])


def test_an_incident_of_an_address_with_a_zone_is_a_400(client):
    """/api/incidents/fe80::1%eth0 answered 200 for src_ip 'fe80::1%eth0', no alert ever matching."""
    r = client.get("/api/incidents/fe80::1%25eth0")
    assert (r.status_code, r.get_json()) == (400, {"error": "src: an IPv6 zone (%eth0) has no meaning here: "
                                                            "'fe80::1%eth0'"})
