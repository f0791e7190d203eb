"""Blocklist feeds: fetched over HTTP(S), validated, cached on disk, refreshed in the background.

A feed is fetched at start and every `refresh` seconds by one background thread, never on
the capture path. Each request is conditional (If-None-Match / If-Modified-Since from the
last good copy), TLS is verified (httpx's default), and the body is read in chunks up to
`max_bytes`. A new copy replaces the old one only if it parses, is not an HTML page (a
captive portal or an error page served with status 200) and has not shrunk by more than
`max_shrink`; otherwise the previous list stays and one line names the URL and why. The
last good copy is kept in `cache_dir` (with its ETag / Last-Modified), so a sensor that
restarts without network starts with it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from .blocklist import BlocklistError, ParsedList, parse_lines
from .config import ConfigError
from .schema import format_ts

USER_AGENT = "wirewatch-blocklist-feed"
TIMEOUT_S = 30.0


def new_client() -> httpx.Client:
    """The HTTP client for feeds (TLS verified). Made before a sensor drops root: the CA
    bundle is read here."""
    return httpx.Client(timeout=TIMEOUT_S, follow_redirects=True, max_redirects=5, headers={"User-Agent": USER_AGENT})


def check_urls(urls: list[str]) -> None:
    for url in urls:
        if httpx.URL(url).scheme not in ("http", "https") or not httpx.URL(url).host:
            raise ConfigError(f"detect.blacklist.urls = {url!r}: expected an http:// or https:// URL")


def cache_dir(cfg: Any) -> str:
    """The feed cache of a Config: detect.blacklist.cache_dir, else blocklists/ in the state directory."""
    return cfg.detect.blacklist.cache_dir or os.path.join(cfg.store.state_dir, "blocklists")


def attach(engine: Any, log: TextIO | None = None, client: httpx.Client | None = None) -> FeedSet | None:
    """Give the engine's blacklist detector the configured feeds, starting from their cached
    copies; None when there are no feeds (or the detector is off)."""
    cfg = engine.cfg.detect.blacklist
    detector = next((d for d in engine.detectors if d.name == "blacklist"), None)
    if not cfg.urls or detector is None:
        return None
    check_urls(cfg.urls)
    feeds = FeedSet(cfg.urls, cache_dir(engine.cfg), cfg.refresh, cfg.max_shrink, cfg.max_bytes, detector.use_feed,
                    log=log, client=client)
    detector.feeds = feeds
    feeds.load_cache()
    return feeds


FEED_KEYS = ("urls", "refresh", "max_shrink", "max_bytes", "cache_dir")


def reattach(engine: Any, current: FeedSet | None, log: TextIO | None = None, start: bool = True) -> FeedSet | None:
    """SIGHUP: the feeds of the reloaded config (engine.cfg, already in effect). With the same
    feed settings the running FeedSet stays; otherwise it stops (its HTTP client, made before
    the drop, is handed on), the lists of feeds no longer named leave the matcher, and a new
    FeedSet starts from the cached copies and fetches now (`start`: in its refresh thread;
    else once, here). A URL that is not http(s) raises ConfigError before anything changes."""
    cfg = engine.cfg.detect.blacklist
    detector = next((d for d in engine.detectors if d.name == "blacklist"), None)
    if current is not None and detector is not None and \
            [f.url for f in current.feeds] == list(dict.fromkeys(cfg.urls)) and current.cache_dir == cache_dir(engine.cfg) \
            and (current.refresh, current.max_shrink, current.max_bytes) == (cfg.refresh, cfg.max_shrink, cfg.max_bytes):
        return current
    check_urls(cfg.urls)
    client = None
    if current is not None:
        current.stop(close_client=False)
        client = current.client
    if detector is not None:
        for url in [u for u in detector.feed_lists if u not in cfg.urls]:
            detector.feed_lists.pop(url, None)
        detector.feeds = None
        detector.configure()  # the matcher without them
    feeds = attach(engine, log, client) if cfg.urls else None
    if feeds is None:
        if client is not None:
            client.close()
        return None
    if start:
        feeds.start()
    else:
        feeds.fetch_all()
    return feeds


class FeedRejected(Exception):
    """A downloaded copy that must not replace the previous list; the message says why."""


@dataclass
class FeedState:
    url: str
    parsed: ParsedList | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_fetch: float | None = None  # wall time of the last answer (200 accepted or 304)
    last_error: str | None = None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"list": self.url, "entries": len(self.parsed) if self.parsed else 0}
        if self.last_fetch is not None:
            out["last_fetch"] = format_ts(self.last_fetch)
        if self.last_error:
            out["last_error"] = self.last_error
        return out


def looks_like_html(body: bytes, content_type: str) -> bool:
    head = body[:512].lstrip().lower()
    return "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body"))


def validate(url: str, body: bytes, content_type: str, previous: ParsedList | None, max_shrink: float) -> ParsedList:
    """The parsed list, or FeedRejected saying why the previous one stays."""
    if looks_like_html(body, content_type):
        raise FeedRejected("an HTML page, not a blocklist")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FeedRejected("not UTF-8 text") from None
    try:
        parsed = parse_lines(io.StringIO(text), url, url)
    except BlocklistError as exc:
        raise FeedRejected(f"does not parse: {exc}") from None
    if not len(parsed):
        raise FeedRejected("no entries")
    if previous is not None and len(parsed) < (1 - max_shrink) * len(previous):
        raise FeedRejected(f"shrank from {len(previous)} to {len(parsed)} entries "
                           f"(more than detect.blacklist.max_shrink = {max_shrink:g})")
    return parsed


class FeedSet:
    """Every configured feed: its cache, its fetches and the thread that refreshes them.

    `on_update(parsed)` is called with each newly accepted copy (and with each cached copy
    at start); the blacklist detector swaps its matcher there.
    """

    def __init__(self, urls: list[str], cache_dir: str, refresh: float, max_shrink: float, max_bytes: int,
                 on_update: Callable[[ParsedList], None], log: TextIO | None = None,
                 client: httpx.Client | None = None):
        self.feeds = [FeedState(u) for u in dict.fromkeys(urls)]
        self.cache_dir = cache_dir
        self.refresh = refresh
        self.max_shrink = max_shrink
        self.max_bytes = max_bytes
        self.on_update = on_update
        self.log = log or sys.stderr
        # made now, before a sensor drops root: the CA bundle is read here
        self.client = client or new_client()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- cache -------------------------------------------------------------------------
    def _cache_path(self, url: str) -> str:
        return os.path.join(self.cache_dir, hashlib.sha256(url.encode()).hexdigest()[:24])

    def load_cache(self) -> None:
        """Start from the last good copies on disk (a restart without network still has them)."""
        for feed in self.feeds:
            base = self._cache_path(feed.url)
            try:
                with open(base + ".json", encoding="utf-8") as fh:
                    meta = json.load(fh)
                with open(base + ".txt", encoding="utf-8") as fh:
                    parsed = parse_lines(fh, base + ".txt", feed.url)
            except (OSError, ValueError, BlocklistError):
                continue  # no cache yet, or a damaged one: the first fetch will tell
            if meta.get("url") != feed.url or not len(parsed):
                continue
            feed.parsed, feed.etag, feed.last_modified = parsed, meta.get("etag"), meta.get("last_modified")
            feed.last_fetch = meta.get("fetched")
            self.on_update(parsed)

    def _save_cache(self, feed: FeedState, body: bytes) -> None:
        os.makedirs(self.cache_dir, exist_ok=True)
        base = self._cache_path(feed.url)
        meta = {"url": feed.url, "etag": feed.etag, "last_modified": feed.last_modified, "fetched": feed.last_fetch}
        for suffix, data in ((".txt", body), (".json", json.dumps(meta).encode())):
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".feed-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, base + suffix)  # a crash leaves the old copy, never half a file

    # -- fetching ----------------------------------------------------------------------
    def _download(self, feed: FeedState) -> tuple[int, bytes, httpx.Headers]:
        headers = {}
        if feed.parsed is not None and feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.parsed is not None and feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        with self.client.stream("GET", feed.url, headers=headers) as resp:
            if resp.status_code == 304:
                return 304, b"", resp.headers
            if resp.status_code != 200:
                raise FeedRejected(f"HTTP {resp.status_code}")
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise FeedRejected(f"larger than detect.blacklist.max_bytes = {self.max_bytes}")
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FeedRejected(f"larger than detect.blacklist.max_bytes = {self.max_bytes}")
                chunks.append(chunk)
            return 200, b"".join(chunks), resp.headers

    def fetch(self, feed: FeedState) -> bool:
        """One conditional fetch; True if a new copy was accepted."""
        try:
            status, body, headers = self._download(feed)
            if status == 304:
                feed.last_fetch, feed.last_error = time.time(), None
                return False
            parsed = validate(feed.url, body, headers.get("Content-Type", ""), feed.parsed, self.max_shrink)
            if self._stop.is_set():  # stopped meanwhile (a reload dropped this feed): the copy is not used
                return False
        except (FeedRejected, httpx.HTTPError, OSError) as exc:
            why = str(exc) or type(exc).__name__
            feed.last_error = why
            kept = f"keeping the previous list ({len(feed.parsed)} entries)" if feed.parsed else "no list yet"
            print(f"wirewatch: blocklist feed {feed.url}: {why}; {kept}", file=self.log)
            return False
        self.on_update(parsed)  # the matcher first: the status never shows a list not yet in effect
        feed.parsed, feed.etag, feed.last_modified = parsed, headers.get("ETag"), headers.get("Last-Modified")
        feed.last_fetch, feed.last_error = time.time(), None
        try:
            self._save_cache(feed, body)
        except OSError as exc:
            feed.last_error = f"cache not written: {exc.strerror or exc}"
            print(f"wirewatch: blocklist feed {feed.url}: {feed.last_error}", file=self.log)
        return True

    def fetch_all(self) -> None:
        for feed in self.feeds:
            if self._stop.is_set():
                return
            self.fetch(feed)

    # -- the refresh thread ------------------------------------------------------------
    def start(self) -> None:
        """Fetch now and every `refresh` seconds, in a daemon thread that never touches capture."""
        if self._thread is None and self.feeds:
            self._thread = threading.Thread(target=self._run, name="blocklist-feeds", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.fetch_all()
            self._stop.wait(self.refresh)

    def stop(self, close_client: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)  # a download in flight must not hold up shutdown (daemon thread)
        if close_client:
            self.client.close()

    def status(self) -> list[dict[str, Any]]:
        return [f.status() for f in self.feeds]
