"""Server-side session registry and per-client login throttling.

Flask's session is a signed cookie: clearing it on logout does nothing to a copy of the
old cookie, which stays valid until the secret changes. So the cookie carries only a
random session id, and the id must be live in this registry for the cookie to count;
logout removes it, and a stolen copy of the cookie stops working at once.

Both tables are keyed by something a client controls (a session id, an address), so
both are capped: the least recently used entry goes and an eviction counter says so.
Time here is the wall clock on purpose: sessions and lockouts are about people, not packets.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

SESSION_IDLE_S = 12 * 3600.0
MAX_SESSIONS = 10_000
LOGIN_FAILURES = 5  # failed logins allowed per client within LOGIN_WINDOW_S
LOGIN_WINDOW_S = 60.0
MAX_CLIENTS = 10_000


@dataclass
class SessionRegistry:
    """Live session ids -> last use; a cookie whose id is not here is not logged in."""

    idle_s: float = SESSION_IDLE_S
    cap: int = MAX_SESSIONS
    clock: Callable[[], float] = time.monotonic
    live: OrderedDict[str, float] = field(default_factory=OrderedDict)
    evicted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> str:
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.live[sid] = self.clock()
            while len(self.live) > self.cap:
                self.live.popitem(last=False)
                self.evicted += 1
        return sid

    def touch(self, sid: object) -> bool:
        """True (and refreshed) if sid is a live session that has not been idle too long."""
        if not isinstance(sid, str):
            return False
        now = self.clock()
        with self.lock:
            last = self.live.get(sid)
            if last is None:
                return False
            if now - last > self.idle_s:
                del self.live[sid]
                return False
            self.live[sid] = now
            self.live.move_to_end(sid)
            return True

    def revoke(self, sid: object) -> None:
        with self.lock:
            if isinstance(sid, str):
                self.live.pop(sid, None)


@dataclass
class LoginThrottle:
    """At most `failures` wrong tokens per client address within `window_s`; then the
    client waits until its oldest failure leaves the window."""

    failures: int = LOGIN_FAILURES
    window_s: float = LOGIN_WINDOW_S
    cap: int = MAX_CLIENTS
    clock: Callable[[], float] = time.monotonic
    recent: OrderedDict[str, list[float]] = field(default_factory=OrderedDict)
    evicted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _current(self, client: str, now: float) -> list[float]:
        times = [t for t in self.recent.get(client, []) if now - t < self.window_s]
        if times:
            self.recent[client] = times
        else:
            self.recent.pop(client, None)
        return times

    def retry_after(self, client: str) -> float:
        """Seconds the client must wait before trying again (0 = may try now)."""
        now = self.clock()
        with self.lock:
            times = self._current(client, now)
            if len(times) < self.failures:
                return 0.0
            return max(0.0, self.window_s - (now - times[-self.failures]))

    def failed(self, client: str) -> None:
        now = self.clock()
        with self.lock:
            times = self._current(client, now)
            times.append(now)
            self.recent[client] = times[-self.failures:]
            self.recent.move_to_end(client)
            while len(self.recent) > self.cap:
                self.recent.popitem(last=False)
                self.evicted += 1

    def succeeded(self, client: str) -> None:
        with self.lock:
            self.recent.pop(client, None)
