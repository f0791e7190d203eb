"""The dashboard: a Flask application factory, run as its own unprivileged process."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, g

from ..store.admin import open_triage
from ..store.pool import StorePool
from ..store.postgres_schema import is_postgres
from ..store.search import START_LIMIT, catch_up
from .api import api
from .auth import auth
from .json_provider import OrjsonProvider
from .pages import pages
from .sessions import LoginThrottle, SessionRegistry

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def vendor_dir() -> Path | None:
    """node_modules of the checkout (npm installs Chart.js there); WIREWATCH_NODE_MODULES overrides."""
    env = os.environ.get("WIREWATCH_NODE_MODULES")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [p / "node_modules" for p in here.parents]
    for c in candidates:
        if (c / "chart.js" / "dist" / "chart.umd.js").exists():
            return c
    return None


def create_app(db_path: str, token: str, overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.update(
        DB_PATH=db_path, TOKEN=token,
        SECRET_KEY=hashlib.sha256(b"wirewatch-session:" + token.encode() + secrets.token_bytes(16)).digest(),
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict", VENDOR=vendor_dir(),
    )
    app.config.update(overrides or {})
    app.register_blueprint(auth)
    app.register_blueprint(pages)
    app.register_blueprint(api)

    if not is_postgres(db_path):
        catch_up(db_path, START_LIMIT)  # serve()'s Indexer does the rest in the background, then keeps it current
    pool = StorePool(app.config["DB_PATH"])
    app.extensions["store_pool"] = pool

    @app.before_request
    def store_for_request() -> None:
        g.store = pool.acquire()

    @app.teardown_request
    def release_store(exc: BaseException | None) -> None:
        store = g.pop("store", None)
        if store is not None:
            pool.release(store, failed=exc is not None)

    @app.after_request
    def security_headers(resp):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    app.extensions["sessions"] = SessionRegistry()
    app.extensions["login_throttle"] = LoginThrottle()
    app.extensions["triage"] = lambda: open_triage(app.config["DB_PATH"])
    return app


def token_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())  # type: ignore[union-attr]
