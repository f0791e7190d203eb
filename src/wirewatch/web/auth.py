"""Access token login, server-side sessions, login throttling, and CSRF protection."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from .sessions import LoginThrottle, SessionRegistry

auth = Blueprint("auth", __name__)


def _token_ok(given: str | None) -> bool:
    from . import token_matches
    return token_matches(current_app.config["TOKEN"], given)


def sessions() -> SessionRegistry:
    return current_app.extensions["sessions"]


def throttle() -> LoginThrottle:
    return current_app.extensions["login_throttle"]


def client_address() -> str:
    """Who is trying (the throttle's key). Behind a reverse proxy every client shares its
    address, which makes the throttle stricter, never looser."""
    return request.remote_addr or "?"


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def authenticated() -> bool:
    return sessions().touch(session.get("sid")) or _token_ok(bearer())


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _too_many(wait: float) -> Any:
    resp = make_response(render_template("login.html", error=f"Too many wrong tokens; try again in {math.ceil(wait)} s.",
                                         next=""), 429)
    resp.headers["Retry-After"] = str(math.ceil(wait))
    return resp


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        given = bearer()
        if given is not None and not _token_ok(given):
            wait = throttle().retry_after(client_address())
            if wait > 0:
                abort(429)
            throttle().failed(client_address())
        if not authenticated():
            if request.path.startswith("/api/") or request.path == "/metrics":
                abort(401)
            return redirect(url_for("auth.login", next=request.path))
        if request.method == "POST" and not _token_ok(given):
            sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
            if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
                abort(403, "CSRF token missing or wrong")
        return view(*args, **kwargs)
    return wrapped


def safe_next(target: str | None) -> str:
    """A redirect target on this site, else the overview.

    Only a plain absolute path qualifies: browsers drop tabs and newlines from URLs and read
    a backslash as a slash, so `/\\t/evil.example` or `/\\evil.example` would become the
    scheme-relative `//evil.example` on the way out. Anything with a control character,
    space or backslash, a scheme, a host or a leading `//` is refused."""
    fallback = url_for("pages.overview")
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


@auth.route("/login", methods=["GET", "POST"])
def login() -> Any:
    given = request.form.get("token") if request.method == "POST" else request.args.get("token")
    nxt = request.values.get("next", "")
    if given is not None:
        wait = throttle().retry_after(client_address())
        if wait > 0:
            return _too_many(wait)
        if _token_ok(given):
            throttle().succeeded(client_address())
            sessions().revoke(session.get("sid"))
            session.clear()
            session["sid"] = sessions().open()
            csrf_token()
            return redirect(safe_next(nxt))
        throttle().failed(client_address())
        return render_template("login.html", error="Wrong access token.", next=nxt), 401
    return render_template("login.html", error=None, next=nxt)


@auth.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    sessions().revoke(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"))
