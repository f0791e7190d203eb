"""web/auth.py: token login into a server-side session, bearer tokens for the API, CSRF on
every form post, throttled wrong tokens, and redirects that stay on the site."""

from __future__ import annotations

import pytest
from dashboard_fixtures import TOKEN, csrf, login, store_with_alerts

from wirewatch.web import create_app
from wirewatch.web.auth import bearer, safe_next
from wirewatch.web.sessions import LoginThrottle


@pytest.fixture
def app(tmp_path):
    return create_app(store_with_alerts(str(tmp_path / "ww.db"), 3), TOKEN)


def test_login_by_link_or_form_opens_a_session_and_goes_to_next(app):
    c = app.test_client()
    r = c.get(f"/login?token={TOKEN}&next=/mutes")
    assert r.status_code == 302 and r.headers["Location"] == "/mutes"
    assert c.get("/api/alerts").status_code == 200
    form = app.test_client()
    r = form.post("/login", data={"token": TOKEN, "next": "/alerts"})
    assert r.status_code == 302 and r.headers["Location"] == "/alerts" and form.get("/alerts").status_code == 200


def test_a_wrong_token_is_refused_and_opens_nothing(app):
    c = app.test_client()
    r = c.post("/login", data={"token": TOKEN + "x"})
    assert r.status_code == 401 and "Wrong access token." in r.get_data(as_text=True)
    assert c.get("/api/alerts").status_code == 401
    r = c.get("/alerts")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/alerts")
    assert c.get("/login").status_code == 200  # the form itself needs no token


def test_bearer_token_reaches_the_api_without_a_session_and_without_csrf(app):
    c = app.test_client()
    assert c.get("/api/alerts", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert c.get("/api/alerts", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/alerts", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    r = c.post("/api/alerts/ack", json={"ids": [1]}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.get_json()["updated"] == 1


def test_a_session_post_needs_the_csrf_token(app):
    c = login(app.test_client())
    assert c.post("/api/alerts/ack", json={"ids": [1]}).status_code == 403
    assert c.post("/api/alerts/ack", json={"ids": [1]}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert c.post("/api/alerts/ack", json={"ids": [1]}, headers={"X-CSRF-Token": csrf(c)}).status_code == 200


def test_wrong_bearer_tokens_count_towards_the_throttle(app):
    now = [500.0]
    app.extensions["login_throttle"] = LoginThrottle(failures=3, window_s=60, clock=lambda: now[0])
    c = app.test_client()
    codes = [c.get("/api/alerts", headers={"Authorization": "Bearer nope"}).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    r = c.post("/login", data={"token": TOKEN})  # even the right token waits its turn
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    now[0] += 61
    assert c.post("/login", data={"token": TOKEN}).status_code == 302


@pytest.mark.parametrize("target, expected", [
    ("/alerts?type=port_scan", "/alerts?type=port_scan"), ("/incidents/10.0.0.1", "/incidents/10.0.0.1"),
    ("", "/"), (None, "/"), ("https://evil.example/", "/"), ("//evil.example", "/"), ("/\\evil.example", "/"),
    ("/\t/evil.example", "/"), ("/ok\nx", "/"), ("alerts", "/"), ("/\x7f", "/"),
])
def test_safe_next_stays_on_the_site(app, target, expected):
    with app.test_request_context("/login"):
        assert safe_next(target) == expected


def test_bearer_reads_only_a_bearer_header(app):
    for header, expected in (("Bearer  abc ", "abc"), ("bearer abc", "abc"), ("Basic abc", None), ("", None)):
        with app.test_request_context("/", headers={"Authorization": header} if header else {}):
            assert bearer() == expected, header
