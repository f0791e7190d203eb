"""Dashboard sessions: logout revokes on the server, wrong tokens are throttled per
client, `next=` never leaves the site, non-loopback binds need a strong token."""

from __future__ import annotations

import pytest
from dashboard_fixtures import TOKEN, csrf, login, store_with_alerts

from wirewatch import config
from wirewatch.web import create_app
from wirewatch.web.sessions import LoginThrottle
from wirewatch.webserver import WebError, check_bind


@pytest.fixture
def app(tmp_path):
    return create_app(store_with_alerts(str(tmp_path / "ww.db"), 5), TOKEN)


def test_logout_revokes_the_session_on_the_server(app):
    c = login(app.test_client())
    assert c.get("/api/alerts").status_code == 200
    stolen = c.get_cookie("session").value  # a copy of the cookie taken while logged in
    assert c.post("/logout", headers={"X-CSRF-Token": csrf(c)}).status_code == 302
    assert c.get("/api/alerts").status_code == 401
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/api/alerts").status_code == 401
    assert replay.get("/").status_code == 302  # back to the login page


def test_two_sessions_are_independent(app):
    a, b = login(app.test_client()), login(app.test_client())
    a.post("/logout", headers={"X-CSRF-Token": csrf(a)})
    assert a.get("/api/alerts").status_code == 401 and b.get("/api/alerts").status_code == 200


def test_wrong_tokens_are_throttled_per_client(app):
    now = [1000.0]
    app.extensions["login_throttle"] = LoginThrottle(failures=5, window_s=60, clock=lambda: now[0])
    c = app.test_client()
    other = {"REMOTE_ADDR": "192.0.2.7"}
    for _ in range(5):
        assert c.post("/login", data={"token": "guess"}).status_code == 401
    r = c.post("/login", data={"token": TOKEN})  # even the right token waits now
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 60
    assert c.get("/api/alerts", headers={"Authorization": "Bearer guess"}).status_code == 429
    assert c.post("/login", data={"token": TOKEN}, environ_base=other).status_code == 302  # another client is not
    now[0] += 61
    assert c.post("/login", data={"token": TOKEN}).status_code == 302


def test_throttle_state_is_bounded():
    t = LoginThrottle(cap=100)
    for i in range(1000):
        t.failed(f"198.51.{i // 256}.{i % 256}")
    assert len(t.recent) == 100 and t.evicted == 900


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example",
                                    "//evil.example", "/\\evil.example", "/%5cevil.example", "https://evil.example/",
                                    "/%20/evil.example", "javascript:alert(1)", "/%7f/evil.example"])
def test_next_never_leaves_the_site(app, target):
    r = app.test_client().get(f"/login?token={TOKEN}&next={target}")
    assert r.status_code == 302
    assert r.headers["Location"] == "/", (target, r.headers["Location"])


def test_next_keeps_a_path_on_the_site(app):
    r = app.test_client().get(f"/login?token={TOKEN}&next=/alerts%3Ftype%3Dport_scan")
    assert r.headers["Location"] == "/alerts?type=port_scan"


@pytest.mark.parametrize("token", ["short", "a" * 40, "abcdefghijklmnopqrstu"])
def test_non_loopback_bind_needs_a_128_bit_token(token):
    cfg = config.build([("web", "token", token, "test")])
    with pytest.raises(WebError, match="128 bits"):
        check_bind(cfg, "0.0.0.0")
    check_bind(cfg, "127.0.0.1")  # loopback is fine with any token


def test_strong_tokens_bind_anywhere():
    import secrets
    for token in (secrets.token_urlsafe(24), secrets.token_hex(16)):
        check_bind(config.build([("web", "token", token, "test")]), "0.0.0.0")
