"""web/params.py: every value the API accepts is checked, and a bad one is a QueryError naming
the field and the value (the API's 400), never an exception deep in the store (a 500)."""

from __future__ import annotations

import pytest

from wirewatch.store.queries import QueryError
from wirewatch.web import params


@pytest.mark.parametrize(("call", "message"), [
    (lambda: params.integer("limit", "9" * 25, 1, 10), "limit: not a number"),
    (lambda: params.integer("port", 70000, 0, 65535), "port: must be between 0 and 65535, got 70000"),
    (lambda: params.integer("ids", True, 1, 9), "ids: expected an integer, got True"),
    (lambda: params.integer("ids", 1.5, 1, 9), "ids: expected an integer, got 1.5"),
    (lambda: params.number("hours", "nan", 0, 10), "hours: must be a finite number between 0 and 10, got 'nan'"),
    (lambda: params.number("hours", 1e308, 0, 10), "hours: must be a finite number"),
    (lambda: params.number("since", "x" * 50, 0, 10), "since: not a number"),
    (lambda: params.text("q", "a" * 100_000, params.MAX_Q), "q: longer than 200 characters (100000)"),
    (lambda: params.text("src", "10.0.0.1\n", 100), "src: control characters are not allowed"),
    (lambda: params.address("src", "10.0.0.300"), "src: not an IP address: '10.0.0.300'"),
    (lambda: params.boolean("acknowledged", "maybe"), "acknowledged: expected true or false, got 'maybe'"),
    (lambda: params.country_code("USA"), "country: expected a two-letter country code"),
    (lambda: params.alert_ids(list(range(1, 1002))), "ids: at most 1000 per request, got 1001"),
    (lambda: params.alert_ids("1,2"), "ids: expected a list of alert ids"),
    (lambda: params.mute_request({"type": "nosuch"}, ["port_scan"]), "type: unknown detector 'nosuch'"),
    (lambda: params.mute_request({"type": "port_scan", "dest_port": 70000}, ["port_scan"]), "dest_port: must be"),
    (lambda: params.mute_request([1], ["port_scan"]), "body: expected a JSON object, got [1]"),
])
def test_a_bad_value_names_its_field(call, message):
    with pytest.raises(QueryError) as err:
        call()
    assert str(err.value).startswith(message)


def test_good_values_come_back_normalised():
    assert params.integer("port", " 443 ", 0, 65535) == 443
    assert params.number("hours", "1.5", 0, 10) == 1.5
    assert params.address("src", "2001:DB8::0:1") == "2001:db8::1"
    assert params.boolean("acknowledged", "Yes") is True and params.boolean("acknowledged", "") is None
    assert params.country_code("de") == "DE"
    assert params.mute_request({"type": "*", "hours": 2}, []) == {
        "alert_type": "*", "cidr": "", "dest_port": None, "hours": 2.0, "reason": ""}
    f = params.alert_filter({"limit": "10000", "port": "22", "src": "10.0.0.0/8"})
    assert (f.limit, f.port, f.src) == (500, 22, "10.0.0.0/8")  # the list is capped at 500 rows
