"""Serving the dashboard: token handling, refusing unsafe binds, never as root."""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
import sqlite3
import sys

from .config import Config
from .privileges import PrivilegeError, drop_to, make_dirs, resolve_user
from .store.postgres_schema import is_postgres
from .store.schema import store_files

TOKEN_FILE = "web-token"
MIN_TOKEN_BITS = 128


class WebError(Exception):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def state_dir(cfg: Config, db_path: str) -> str:
    """Where the dashboard keeps its token: beside a SQLite file, else store.state_dir."""
    return cfg.store.state_dir if is_postgres(db_path) else os.path.dirname(os.path.abspath(db_path))


def load_token(cfg: Config, db_path: str) -> tuple[str, str | None]:
    """(token, file it lives in or None). Generates and stores one (0600) if none is set."""
    if cfg.web.token:
        return cfg.web.token, None
    path = os.path.join(state_dir(cfg, db_path), TOKEN_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
        if token:
            return token, path
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise WebError(f"{path}: cannot read access token: {exc.strerror}") from None
    token = secrets.token_urlsafe(24)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, path


def token_bits(token: str) -> float:
    """A conservative strength estimate: length x log2(alphabet), where the alphabet is the
    character classes the token uses, but never more than twice its distinct characters
    (so 'aaaa...' or 'abab...' count for what they are)."""
    classes = [(str.islower, 26), (str.isupper, 26), (str.isdigit, 10)]
    pool = sum(size for test, size in classes if any(c.isascii() and test(c) for c in token))
    if any(not (c.isascii() and c.isalnum()) for c in token):
        pool += 32
    pool = min(pool, 2 * len(set(token)))
    return len(token) * math.log2(pool) if pool > 1 else 0.0


def check_bind(cfg: Config, host: str) -> None:
    if is_loopback(host):
        return
    if not cfg.web.token:
        raise WebError(f"refusing to serve the dashboard on {host} without authentication configured: "
                       "set web.token (config, WIREWATCH_WEB__TOKEN) or bind 127.0.0.1")
    bits = token_bits(cfg.web.token)
    if bits < MIN_TOKEN_BITS:
        raise WebError(f"web.token: about {bits:.0f} bits, a dashboard on {host} needs at least {MIN_TOKEN_BITS} bits "
                       "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'); or bind 127.0.0.1")


def prepare_store(db_path: str) -> sqlite3.Connection | None:
    """Make sure the store exists (migrated) and, for SQLite, hold it open (WAL) for the life
    of the server.

    While one connection is open SQLite keeps the -wal and -shm files, so once they are
    handed to the dashboard's user it can read and triage after dropping root without
    needing write access to the directory, which the dashboard never takes over unless
    it created it."""
    if is_postgres(db_path):
        from .store.admin import open_triage
        open_triage(db_path).close()
        return None
    from .store.schema import migrate_known

    conn = sqlite3.connect(db_path, isolation_level=None, timeout=5, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    try:
        migrate_known(conn, db_path, "the dashboard does not open it")
    except OSError:
        conn.close()
        raise
    conn.execute("SELECT count(*) FROM schema_version").fetchone()  # creates -shm now, as root
    return conn  # create_app indexes a first part of what is pending, serve()'s Indexer the rest


def serve(cfg: Config, db_path: str, host: str, port: int, quiet: bool = False) -> int:
    check_bind(cfg, host)
    created = [] if is_postgres(db_path) else make_dirs(os.path.dirname(os.path.abspath(db_path)))
    keeper = prepare_store(db_path)  # held open until the process ends; the indexer's connection
    token, token_file = load_token(cfg, db_path)
    from waitress import create_server

    from .web import create_app

    app = create_app(db_path, token, {"PCAP_DIR": cfg.output.pcap_dir})
    server = create_server(app, host=host, port=port, threads=cfg.web.threads, ident="wirewatch")
    warm_up(app, token)
    if os.geteuid() == 0:
        uid, gid = resolve_user(cfg.web.user)
        for path in store_files(db_path) + ([token_file] if token_file else []) + created:
            os.chown(path, uid, gid)  # the store's own files, and directories this process created
        drop_to(uid, gid)
    if os.geteuid() == 0:
        raise PrivilegeError("the dashboard never runs as root")
    shown = f"[{host}]" if ":" in host else host
    print(f"wirewatch dashboard: http://{shown}:{server.effective_port}/login?token={token}", file=sys.stderr, flush=True)
    if token_file:
        print(f"wirewatch dashboard: access token stored in {token_file}", file=sys.stderr, flush=True)
    if keeper is not None:  # SQLite: the pending rest indexed in the background, new alerts within seconds
        from .store.search import Indexer
        Indexer(keeper, where=db_path).start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


def warm_up(app, token: str) -> None:
    """Exercise every route once before dropping root: whatever Flask, Werkzeug and the
    standard library import lazily is loaded while the files are still readable."""
    import email.utils  # noqa: F401 - used by response date headers
    import logging.handlers  # noqa: F401

    from .capture.sources import load_decompressors

    load_decompressors()  # the pcap download of an alert read from a .gz/.xz/.bz2/.zst capture
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    for url in ("/login", "/login?token=wrong", "/", "/alerts", "/alerts/1", "/mutes", "/metrics", "/api/alerts",
                "/api/alerts?type=port_scan&src=10.0.0.0/8&q=a&since=1&port=1", "/api/overview", "/api/mutes",
                "/api/alerts/1", "/vendor/chart.umd.js", "/static/app.css", "/nope"):
        client.get(url, headers=auth)
    client.post("/api/alerts/ack", json={"ids": []}, headers=auth)
    client.post("/logout")
    app.extensions["login_throttle"].recent.clear()  # the warm-up's wrong token is nobody's failure
