"""Store connections reused across dashboard requests.

Opening a PostgreSQL connection (TCP, authentication, settings) costs more than most of
the dashboard's queries, so each worker thread's request takes an open store from this
pool and gives it back. A connection that broke (the database restarted) is dropped on
return, and the next request opens a fresh one.
"""

from __future__ import annotations

import queue
from collections.abc import Callable

from .queries import Queries, open_store


class StorePool:
    def __init__(self, url: str, size: int = 16, opener: Callable[[str], Queries] = open_store):
        self.url = url
        self.opener = opener
        self.idle: queue.LifoQueue[Queries] = queue.LifoQueue(maxsize=size)

    def acquire(self) -> Queries:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            return self.opener(self.url)

    def release(self, store: Queries, failed: bool = False) -> None:
        conn = store.conn
        broken = failed or getattr(conn, "broken", False) or getattr(conn, "closed", False)
        if broken:
            store.close()
            return
        try:
            self.idle.put_nowait(store)
        except queue.Full:
            store.close()

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return
