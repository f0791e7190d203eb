"""A local spool for records a store cannot take yet, and the delivery loop around it.

Backend-neutral: nothing here knows SQL. A store sink (SQLite today, PostgreSQL next)
gives `Delivery` one function, `write(entries)`, that stores a list of entries in ONE
transaction and either commits all of them or raises (after rolling back). Delivery
retries a failed write with backoff; when the store stays unavailable it appends the
entries to the spool (JSON lines, fsync'd) and keeps spooling everything that follows,
so order is kept. Once a probe write succeeds, the spool is replayed in order, then new
records go straight to the store again.

Every spooled record gets a unique id (`uid`) when it enters the spool. The backend
stores that id with the row and skips ids it already has, so a replay interrupted after
its commit but before its progress was saved (a crash, a kill) stores nothing twice.
Records written directly never went through a failure, so they need no id (None).

The spool is bounded (`store.spool_max_mb`): once the next records would pass the bound,
they and everything after them are dropped from the store (and counted) until the spool has
been replayed; the sensor never blocks on its store. Dropping, not blocking, because a
blocked writer stops the capture loop: the kernel then drops packets, so the sensor goes
blind to everything, while a dropped alert still reaches the console, the EVE log, syslog
and webhooks (the store is one output of several). Delivery says so once per episode.

Files: `<path>` holds the entries, `<path>.done` the byte offset replayed so far
(overwritten in place after each committed chunk). The spool file is truncated once
fully replayed.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

REPLAY_CHUNK = 5000  # entries per replay transaction
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024  # store.spool_max_mb's default


class StoreAhead(Exception):
    """The store's schema is newer than this wirewatch knows: a newer version migrated it while
    this one writes. Writing on with the old schema's assumptions would be wrong (a writer from
    before migration 12 rolled a storm's sources up a second time), so the writer stops: Delivery
    keeps this batch and every later record in the spool (an upgraded wirewatch stores them at
    its start) and the command ends with one line, exit status 2."""

    def __init__(self, version: int, known: int):
        super().__init__(f"the store's schema is version {version}, newer than this wirewatch knows ({known}): "
                         "a newer wirewatch migrated it")

    def refusal(self, where: str, what: str) -> StoreRefused:
        """The one line a command ends with: the store (file or URL), both versions, and what
        this wirewatch does not do with it."""
        return StoreRefused(f"{where}: {self}; {what} (upgrade it)")


class StoreRefused(OSError):
    """A store this wirewatch will not write into (StoreAhead.refusal): one line, exit status 2."""


@dataclass(slots=True)
class Entry:
    """One record on its way to the store; uid is None unless it went through the spool."""

    record: dict[str, Any]
    uid: str | None = None


WriteFn = Callable[[list[Entry]], None]


def _dumps(obj: dict[str, Any]) -> bytes:
    """One spool line (orjson: a storm may be spooling tens of thousands of alerts a second)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # a type orjson does not know: the standard library's rules
        return json.dumps(obj, default=str).encode("utf-8")


class Spool:
    """Append-only file of entries in arrival order, replayed in that order."""

    def __init__(self, path: str, max_bytes: float = DEFAULT_MAX_BYTES):
        self.path = path
        self.max_bytes = max_bytes
        self.full = False  # records are being dropped until the spool is replayed
        self.dropped = 0  # records dropped because the spool was full
        self.done_path = path + ".done"
        # uids are unique across runs and hosts: what secrets.token_hex(8) gives, without
        # importing secrets (hmac, hashlib, random: 3 ms of every `read`'s start-up)
        self._prefix = os.urandom(8).hex() + "-"
        self._seq = 0
        self.spooled = 0  # entries appended by this process
        self.replayed = 0  # entries replayed by this process (also ones spooled by an earlier run)
        self.damaged = 0  # lines that were not a complete entry (a torn write at a crash)
        self.pending = self._count_pending()

    def files(self) -> list[str]:
        return [p for p in (self.path, self.done_path) if os.path.exists(p)]

    def _offset(self) -> int:
        try:
            with open(self.done_path, encoding="ascii") as fh:
                return int(fh.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _save_offset(self, offset: int) -> None:
        """Overwrite the offset in place (fixed width, one small write, fsync'd): no temporary
        file, so an unprivileged sensor needs no write access to the directory."""
        fd = os.open(self.done_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, f"{offset:020d}\n".encode("ascii"), 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def create(self) -> list[str]:
        """Create both files now (empty), e.g. before dropping root, so that they can be handed over."""
        for path in (self.path, self.done_path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        return [self.path, self.done_path]

    def _count_pending(self) -> int:
        """Entries not yet replayed; a torn last line (a crash mid-append) is cut off first."""
        if not os.path.exists(self.path):
            return 0
        with open(self.path, "rb+") as fh:
            data_end = fh.seek(0, os.SEEK_END)
            if data_end:
                fh.seek(max(0, data_end - 65536))
                tail = fh.read()
                if not tail.endswith(b"\n"):
                    cut = tail.rfind(b"\n")
                    fh.truncate(data_end - len(tail) + cut + 1)
                    self.damaged += 1
            fh.seek(self._offset())
            return sum(1 for line in fh if line.endswith(b"\n"))

    @contextmanager
    def _locked(self) -> Iterator[int]:
        """The spool file open for appending, under an exclusive lock: two processes on one
        store (a `read --db` beside a running sensor) never truncate what the other appended."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def append(self, records: list[dict[str, Any]]) -> int:
        """Durably append records (fsync before returning), each with a fresh uid; returns how
        many were dropped because the spool is full (those and all after them, in order,
        until the spool has been replayed)."""
        if not records:
            return 0
        if self.full:
            self.dropped += len(records)
            return len(records)
        lines = []
        for rec in records:
            self._seq += 1
            lines.append(_dumps({"uid": f"{self._prefix}{self._seq:x}", "record": rec}) + b"\n")
        with self._locked() as fd:
            room = self.max_bytes - os.fstat(fd).st_size
            kept = 0
            for line in lines:
                room -= len(line)
                if room < 0:
                    break
                kept += 1
            data = memoryview(b"".join(lines[:kept]))
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        lost = len(records) - kept
        if lost:
            self.full = True
            self.dropped += lost
        self.spooled += kept
        self.pending += kept
        return lost

    def _chunks(self, size: int) -> Iterator[tuple[list[Entry], int]]:
        """(entries, offset just past them) from the replay offset on; a torn or damaged line
        is counted and skipped, an incomplete last line (being written) ends the replay."""
        with open(self.path, "rb") as fh:
            fh.seek(self._offset())
            chunk: list[Entry] = []
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                try:
                    obj = json.loads(line)
                    chunk.append(Entry(obj["record"], obj["uid"]))
                except (ValueError, KeyError, TypeError):
                    self.damaged += 1
                if len(chunk) >= size:
                    yield chunk, fh.tell()
                    chunk = []
            yield chunk, fh.tell()

    def replay(self, write: WriteFn, chunk: int = REPLAY_CHUNK) -> int:
        """Hand pending entries to `write` in order, a chunk per call; progress is saved after
        each chunk. Raises what `write` raises (progress so far is kept). Returns entries replayed."""
        if not self.pending:
            return 0
        done = 0
        with self._locked() as fd:
            for entries, offset in self._chunks(chunk):
                if entries:
                    write(entries)
                self._save_offset(offset)
                done += len(entries)
                self.replayed += len(entries)
                self.pending = max(0, self.pending - len(entries))
            self.pending = 0
            self.full = False
            os.ftruncate(fd, 0)  # all replayed: start the file afresh
            self._save_offset(0)
        return done


class Delivery:
    """Write records to a store with retries and backoff, spooling while it is unavailable.

    `transient` lists the exception types that mean "the store cannot take this now"
    (locked, busy, disk full, connection lost); anything else is a bug and propagates.
    """

    def __init__(self, write: WriteFn, spool: Spool, transient: tuple[type[BaseException], ...],
                 retries: int = 3, backoff_s: float = 0.05, probe_max_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 log: TextIO | None = None, what: str = "store"):
        self._write = write
        self.spool = spool
        self.transient = transient
        self.retries = retries
        self.backoff_s = backoff_s
        self.probe_max_s = probe_max_s
        self.clock = clock
        self.sleep = sleep
        self.log = log
        self.what = what
        self.last_error = ""
        self.halted = ""  # why the store takes no more writes from this process (StoreAhead), once it said so
        self.errors = 0  # failed write attempts
        self._probe_every = backoff_s * 10
        self._next_probe = 0.0

    def _attempt(self, entries: list[Entry], retries: int) -> bool:
        delay = self.backoff_s
        for attempt in range(retries + 1):
            try:
                self._write(entries)
                return True
            except self.transient as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt < retries:
                    self.sleep(delay)
                    delay *= 2
        return False

    def _replay(self) -> bool:
        """Try to empty the spool; False (and the next probe later, backing off) if the store
        is still unavailable."""
        try:
            n = self.spool.replay(self._write)
        except self.transient as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._next_probe = self.clock() + self._probe_every
            self._probe_every = min(self.probe_max_s, self._probe_every * 2)
            return False
        self._probe_every = self.backoff_s * 10
        self._say(f"store available again; replayed {n:,} spooled records in order")
        return True

    def _say(self, text: str) -> None:
        if self.log is not None:
            print(f"wirewatch: {self.what}: {text}", file=self.log, flush=True)

    def _spool(self, records: list[dict[str, Any]]) -> None:
        was_full = self.spool.full
        self.spool.append(records)
        if self.spool.full and not was_full:
            self._say(f"spool {self.spool.path} is full ({self.spool.max_bytes / 1048576:,.0f} MB, "
                      "store.spool_max_mb): alerts are dropped from the store, and counted (spool_dropped), until "
                      "it has been replayed; they still reach the console, the log and the other outputs")

    def deliver(self, records: list[dict[str, Any]]) -> None:
        """Store `records` after everything spooled before them, or spool them (always, once
        the store is ahead of this writer: `halted`)."""
        if not records:
            return
        if self.halted:
            self._spool(records)
            return
        try:
            if self.spool.pending and (self.clock() < self._next_probe or not self._replay()):
                self._spool(records)
                return
            if not self._attempt([Entry(r) for r in records], self.retries):
                self._say(f"cannot store ({self.last_error}); spooling to {self.spool.path} until it can")
                self._spool(records)
                self._next_probe = self.clock() + self._probe_every
        except StoreAhead as exc:  # nothing of this batch was stored (its transaction rolled back)
            self.halted = str(exc)
            self._spool(records)

    def flush(self, deadline_s: float = 2.0) -> bool:
        """At shutdown: try to replay what is spooled until the deadline. True if nothing is left
        (what is left stays in the spool file for the next start)."""
        end = self.clock() + deadline_s
        while self.spool.pending and not self.halted:
            try:
                if self._replay():
                    return True
            except StoreAhead as exc:
                self.halted = str(exc)
                return False
            if self.clock() + self.backoff_s * 4 > end:
                return False
            self.sleep(self.backoff_s * 4)
        return not self.spool.pending

    def stats(self) -> dict[str, int]:
        return {"spooled": self.spool.spooled, "replayed": self.spool.replayed, "spool_pending": self.spool.pending,
                "store_errors": self.errors, "spool_damaged": self.spool.damaged, "spool_dropped": self.spool.dropped}
