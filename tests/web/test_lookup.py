"""web/lookup.py: ids from URLs bounded to the store's 64 bits; a stored alert or a 404."""

from __future__ import annotations

import pytest
from dashboard_fixtures import TOKEN, login, store_with_alerts
from flask import g
from werkzeug.exceptions import NotFound

from wirewatch.store.queries import QueryError, Store
from wirewatch.web import create_app
from wirewatch.web.lookup import INT64_MAX, alert_or_404, checked_id


def test_checked_id_takes_1_to_int64_max_and_names_the_field():
    assert checked_id(1, "id") == 1 and checked_id(INT64_MAX, "id") == INT64_MAX == 2**63 - 1
    for bad in (0, -1, INT64_MAX + 1):
        with pytest.raises(QueryError, match=r"^mute_id: must be between 1 and 9223372036854775807$"):
            checked_id(bad, "mute_id")


def test_alert_or_404_over_a_real_store(tmp_path):
    db = store_with_alerts(str(tmp_path / "ww.db"), 4)
    app = create_app(db, TOKEN)
    with app.test_request_context("/"):
        g.store = Store(db)
        a = alert_or_404(3)
        assert a["id"] == 3 and a["record"]["flow_id"] == 2 and a["src_ip"] == "10.0.0.3"
        for missing in (5, 0, -3, INT64_MAX + 1):
            with pytest.raises(NotFound):
                alert_or_404(missing)
        g.store.close()


def test_the_routes_answer_404_for_ids_past_64_bits(tmp_path):
    c = login(create_app(store_with_alerts(str(tmp_path / "ww.db"), 2), TOKEN).test_client())
    for url in (f"/alerts/{2**64}", f"/api/alerts/{2**64}", "/alerts/3", "/api/alerts/3"):
        assert c.get(url).status_code == 404, url
    assert c.get("/alerts/2").status_code == 200
