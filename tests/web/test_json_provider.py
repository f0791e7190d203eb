"""The API's answers are written by orjson (web/json_provider.py): every GET answer over a
store filled from corpus captures is the JSON value Flask's own provider writes, keys in the
same order, and what orjson would write differently goes to Flask's provider."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import os
import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest
from conftest import CORPUS
from dashboard_fixtures import TOKEN
from flask.json.provider import DefaultJSONProvider

from wirewatch.store import queries
from wirewatch.web import create_app
from wirewatch.web.json_provider import OrjsonProvider


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("json")
    path = str(tmp / "ww.db")
    for sensor, pcap in (("edge-a", "dev01_nmap_syn_top100.pcap"), ("edge-b", "dev18_blacklist_src.pcap"),
                         ("edge-b", "dev10_hping3_syn_flood.pcap"), ("edge-c", "dev24_distributed_scan.pcap"),
                         ("edge-c", "dev17_suspicious_ports.pcap")):
        r = subprocess.run([sys.executable, "-m", "wirewatch", "read", str(CORPUS / pcap), "--db", path, "--sensor",
                            sensor, "--blacklist", str(CORPUS / "blacklist.txt"), "--logfile", "", "--quiet",
                            "--no-progress", "--set", f"store.state_dir={tmp}"],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "WIREWATCH_OUTPUT__DB": ""})
        assert r.returncode == 0, r.stderr
    return path


def pairs(text: str) -> object:
    """The JSON value with every object as its list of (key, value) pairs: equal only when
    the keys are in the same order too."""
    return json.loads(text, object_pairs_hook=lambda kv: ("object", kv))


def test_every_get_answer_is_flasks_json_value_in_flasks_key_order(db, monkeypatch):
    monkeypatch.setattr(queries, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))  # (sensors' ages)
    app = create_app(db, TOKEN)
    assert isinstance(app.json, OrjsonProvider)
    ours = app.test_client()
    reference = create_app(db, TOKEN)
    reference.json = DefaultJSONProvider(reference)
    theirs = reference.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = ours.get("/api/alerts?limit=500", headers=headers).get_json()["alerts"]
    assert len({a["type"] for a in first}) >= 4 and len({a["sensor"] for a in first}) == 3
    attacker = first[-1]["src_ip"]
    urls = ["/api/alerts", "/api/alerts?limit=500", "/api/alerts?q=blacklist", "/api/alerts?type=syn_flood&src=10.0.0.0/8",
            "/api/alerts?sensor=edge-b&type=port_scan", f"/api/alerts/{first[0]['id']}", f"/api/alerts/{first[-1]['id']}",
            "/api/overview", "/api/overview?sensor=edge-a", "/api/sensors", "/api/incidents",
            f"/api/incidents/{attacker}", "/api/mutes", "/api/tune", "/api/alerts?port=99999", "/api/alerts/999999"]
    for url in urls:
        a, b = ours.get(url, headers=headers), theirs.get(url, headers=headers)
        assert (a.status_code, a.mimetype) == (b.status_code, b.mimetype), url
        if b.mimetype != "application/json":  # (a 404 page)
            assert a.get_data() == b.get_data(), url
            continue
        assert pairs(a.get_data(as_text=True)) == pairs(b.get_data(as_text=True)), url
        assert a.get_data().endswith(b"\n")


@dataclasses.dataclass
class Point:
    x: int
    when: dt.date


@pytest.mark.parametrize("value", [
    {"b": 1, "a": {"d": [1.5, None, True], "c": "café ☃"}},
    {"when": dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC), "day": dt.date(2026, 1, 2)},
    {"amount": decimal.Decimal("1.10"), "id": uuid.UUID(int=7), "p": Point(3, dt.date(2026, 1, 2))},
    {10: "keys that are not text", 2: "b", 1: "a"},
    {"big": 2 ** 70, "small": -(2 ** 63)},
])
def test_values_orjson_writes_otherwise_are_flasks(value):
    app = create_app(":memory:", TOKEN)
    with app.app_context():
        ours = app.json.response(value).get_data(as_text=True)
        theirs = DefaultJSONProvider(app).response(value).get_data(as_text=True)
    assert pairs(ours) == pairs(theirs)


def test_an_unknown_object_is_refused_as_flask_refuses_it():
    app = create_app(":memory:", TOKEN)
    with app.app_context(), pytest.raises(TypeError, match="not JSON serializable"):
        app.json.response({"x": object()})
