"""Webhook sink: alerts posted as JSON to a chat or automation endpoint.

Each post is `{"text": "...", "alerts": [EVE records]}`: `text` (one line per alert) is what
Slack, Mattermost and Microsoft Teams incoming webhooks display; `alerts` is for receivers
that want the records. `write()` only puts alerts on a bounded queue (a full queue drops
and counts, it never waits), so capture never waits for the network. One thread takes
what is queued, up to BATCH alerts or BATCH_WAIT_S seconds at a time, and posts it; a
failed post (connection error, timeout, any status but 2xx) is retried with exponential
backoff up to MAX_ATTEMPTS times, then its alerts are counted as failed. Storm aggregates
and escalations are single records, so they are single lines here, not thousands of posts.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import httpx

from ..config import ConfigError
from . import SinkBase

BATCH = 50
BATCH_WAIT_S = 1.0
MAX_ATTEMPTS = 6
BACKOFF_S = 0.5  # first retry after this, doubling, at most BACKOFF_MAX_S
BACKOFF_MAX_S = 30.0
CLOSE_WAIT_S = 3.0  # at shutdown: how long queued alerts may still take to go out (SIGTERM must end in 5 s)
TIMEOUT_S = 10.0


def alert_line(a: dict[str, Any]) -> str:
    where = " -> ".join(x for x in (a.get("src_ip"), a.get("dest_ip")) if x)
    sev = a.get("alert", {}).get("severity", 3)
    host = f" on {a['host']}" if a.get("host") else ""
    return f"[wirewatch{host}] severity {sev} {a.get('type', 'alert')}: {a.get('message', '')}" + \
        (f" ({where})" if where else "")


class WebhookSink(SinkBase):
    """Its counters go to stats.webhook (counters()), not into the store's delivery stats."""

    name = "webhook"

    def __init__(self, url: str, min_severity: int = 3, queue_size: int = 10_000,
                 client: httpx.Client | None = None, backoff_s: float = BACKOFF_S):
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(f"output.webhook = {url!r}: expected an http:// or https:// URL")
        self.url = url
        self.min_severity = min_severity
        self.backoff_s = backoff_s
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self.client = client or httpx.Client(timeout=TIMEOUT_S)  # before a sensor drops root: reads the CA bundle
        self.counts = {"sent": 0, "posts": 0, "failed_posts": 0, "failed": 0, "dropped": 0, "below_severity": 0}
        self._stop = threading.Event()
        self._give_up_at = float("inf")  # set by close(): retries end then
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def write(self, alerts: list[dict[str, Any]]) -> None:
        for a in alerts:
            if int(a.get("alert", {}).get("severity", 3)) > self.min_severity:
                self.counts["below_severity"] += 1
                continue
            try:
                self.queue.put_nowait(a)
            except queue.Full:
                self.counts["dropped"] += 1

    def _take_batch(self) -> list[dict[str, Any]]:
        try:
            batch = [self.queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + (0 if self._stop.is_set() else BATCH_WAIT_S)
        while len(batch) < BATCH:
            try:
                batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not (self._stop.is_set() and self.queue.empty()):
            batch = self._take_batch()
            if batch:
                self._post(batch)

    def _post(self, batch: list[dict[str, Any]]) -> None:
        body = {"text": "\n".join(alert_line(a) for a in batch), "alerts": batch}
        delay = self.backoff_s
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                ok = self.client.post(self.url, json=body).is_success
            except httpx.HTTPError:
                ok = False
            self.counts["posts"] += 1
            if ok:
                self.counts["sent"] += len(batch)
                return
            self.counts["failed_posts"] += 1
            if attempt == MAX_ATTEMPTS or time.monotonic() >= self._give_up_at:
                break
            self._pause(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
        self.counts["failed"] += len(batch)

    def _pause(self, delay: float) -> None:
        """Back off; close() cuts a long wait short, and after it waits end at its deadline."""
        if not self._stop.is_set():
            self._stop.wait(delay)
        else:
            time.sleep(max(0.0, min(delay, self._give_up_at - time.monotonic())))

    def counters(self) -> dict[str, int]:
        return {**self.counts, "queued": self.queue.qsize()}

    def close(self) -> None:
        """Send what is queued (at most CLOSE_WAIT_S), then stop."""
        self._give_up_at = time.monotonic() + CLOSE_WAIT_S
        self._stop.set()
        self._thread.join(timeout=CLOSE_WAIT_S + 1)
        self.client.close()


def reconfigure(engine: Any, cfg: Any) -> WebhookSink | None:
    """SIGHUP: the webhook of the reloaded config in the engine's sinks. A new minimum severity
    applies to the running sink; a new URL or queue size puts a new sink in its place (it goes on
    with the old one's counters) while the old one sends what it holds in a thread of its own,
    so capture does not wait; an empty URL removes it. A bad URL raises ConfigError first."""
    out = cfg.output
    current = next((s for s in engine.sinks if isinstance(s, WebhookSink)), None)
    if current is not None and out.webhook == current.url and out.webhook_queue == current.queue.maxsize:
        current.min_severity = out.webhook_min_severity
        return current
    new = WebhookSink(out.webhook, out.webhook_min_severity, out.webhook_queue) if out.webhook else None
    if current is not None:
        if new is not None:
            new.counts = current.counts  # one set of counters for the run; the old thread adds what it still sends
            engine.sinks[engine.sinks.index(current)] = new
        else:
            engine.sinks.remove(current)
        threading.Thread(target=current.close, name="webhook-close", daemon=True).start()
    elif new is not None:
        engine.sinks.append(new)
    return new
