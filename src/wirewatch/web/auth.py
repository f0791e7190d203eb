"""Access token login, session, and CSRF protection for state changes."""

from __future__ import annotations

import secrets
from functools import wraps
from typing import Any, Callable

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

auth = Blueprint("auth", __name__)


def _token_ok(given: str | None) -> bool:
    from . import token_matches
    return token_matches(current_app.config["TOKEN"], given)


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def authenticated() -> bool:
    return bool(session.get("auth")) or _token_ok(bearer())


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not authenticated():
            if request.path.startswith("/api/") or request.path == "/metrics":
                abort(401)
            return redirect(url_for("auth.login", next=request.path))
        if request.method == "POST" and not _token_ok(bearer()):
            sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
            if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
                abort(403, "CSRF token missing or wrong")
        return view(*args, **kwargs)
    return wrapped


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else url_for("pages.overview")


@auth.route("/login", methods=["GET", "POST"])
def login() -> Any:
    given = request.form.get("token") if request.method == "POST" else request.args.get("token")
    if given is not None:
        if _token_ok(given):
            session.clear()
            session["auth"] = True
            csrf_token()
            return redirect(_safe_next(request.values.get("next")))
        return render_template("login.html", error="Wrong access token.", next=request.values.get("next", "")), 401
    return render_template("login.html", error=None, next=request.args.get("next", ""))


@auth.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))
