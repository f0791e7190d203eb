"""Free-text search over stored alerts, through each store's full-text index.

SQLite: an FTS5 table over the alert's message and record (external content: the text
stays in `alerts`, the index holds only tokens). The sensor's writer does not index: a
per-row trigger made an alert storm three times slower to store (50,000 alerts: 1.3 ->
4.5 CPU seconds). The dashboard indexes instead, in bulk (about a tenth of that cost per
alert), in short chunks from a background thread, so it serves at once: a store of a
million alerts not yet indexed (after the migration that added the index, or when no
dashboard ran while the sensor wrote) takes minutes to index, and meanwhile text search
covers the alerts indexed so far, oldest first (`status`: the API's `search` object and a
line on the alerts page say how far it got); then every INDEX_EVERY_S, so text search sees
an alert within a few seconds of its storage. Retention's deletes take indexed alerts out
of the index (a trigger). PostgreSQL: the
generated `tsvector` column `alerts.search` with a GIN index (store/postgres_schema.py).
Both tokenize words, so `q` is searched as a phrase of whole words ("port scan" finds
"Possible port scan from ...", "10.3.0.5" finds that address, "scan" does not find "scanner");
an address, host name or time is one word ("10.3" does not find "10.3.0.5"); a record's
values are words of their own, apart from their keys ("flow_id":7 is found by 7), and a colon or
full stop ending a word is punctuation (text_words).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from typing import TextIO

from .deferred import catch_up_sources
from .spool import StoreAhead
from .transaction import known_immediate

SQLITE_FTS = """
CREATE VIRTUAL TABLE alerts_fts USING fts5(message, record, content='alerts', content_rowid='id');
CREATE TABLE alerts_fts_done (last_id INTEGER NOT NULL);
INSERT INTO alerts_fts_done VALUES (0);
CREATE TRIGGER alerts_fts_delete AFTER DELETE ON alerts WHEN OLD.id <= (SELECT last_id FROM alerts_fts_done) BEGIN
    INSERT INTO alerts_fts(alerts_fts, rowid, message, record) VALUES ('delete', OLD.id, OLD.message, OLD.record);
END;
"""

# Addresses are words: with '.' and ':' as token characters "10.2.3.4" is one token, found by
# one look-up, where the default tokenizer made it the phrase "10 2 3 4" of four tokens that
# nearly every record has (30 ms at 100,000 alerts, growing with the store; 0.3 ms now). IPv6
# and MAC addresses, host names and times are single words too, as in PostgreSQL's parser.
# The index is rebuilt in the background like any backlog (status() says how far it got).
SQLITE_FTS_ADDRESSES = """
DROP TRIGGER alerts_fts_delete;
DROP TABLE alerts_fts;
CREATE VIRTUAL TABLE alerts_fts USING fts5(message, record, content='alerts', content_rowid='id',
                                           tokenize="unicode61 tokenchars '.:'");
UPDATE alerts_fts_done SET last_id = 0;
CREATE TRIGGER alerts_fts_delete AFTER DELETE ON alerts WHEN OLD.id <= (SELECT last_id FROM alerts_fts_done) BEGIN
    INSERT INTO alerts_fts(alerts_fts, rowid, message, record) VALUES ('delete', OLD.id, OLD.message, OLD.record);
END;
"""

# What migration 13's index read of a record (its delete trigger; text_words below since 14):
# the JSON with a space after each key's colon.
# With ':' a token character (migration 11) `"flow_id":7` was the token ':7', and a flow_id,
# signature id, number or time in the record was found no more; addresses stay single words.
def record_words(column: str) -> str:
    return f"""replace({column}, '":', '" ')"""


def reindexed(message: str, record: str) -> str:
    """A migration that empties the full-text index, to be rebuilt in the background (status()),
    and makes the delete trigger remove what the index now reads of a message and a record."""
    return f"""
DROP TRIGGER alerts_fts_delete;
INSERT INTO alerts_fts(alerts_fts) VALUES ('delete-all');
UPDATE alerts_fts_done SET last_id = 0;
CREATE TRIGGER alerts_fts_delete AFTER DELETE ON alerts WHEN OLD.id <= (SELECT last_id FROM alerts_fts_done) BEGIN
    INSERT INTO alerts_fts(alerts_fts, rowid, message, record) VALUES ('delete', OLD.id, {message}, {record});
END;
"""


# 13: the record indexed as record_words() gives it
SQLITE_FTS_RECORD_WORDS = reindexed("OLD.message", record_words("OLD.record"))

# What the index reads of a message or record since migration 14, and what a query is made of
# (the insert below, the delete trigger and fts5_phrase must agree, or the external-content
# index is corrupt): record_words' key colons, and a colon or full stop that ends a word
# ("Unusual traffic from 10.10.0.66: IP protocol 253" had the word '10.10.0.66:', so the
# message's phrase "traffic from 10.10.0.66" was found no more). Inside a word (an address, a
# file name, a time) they stay: no address ends with ': ' or '. ', and an IPv6 address ending
# in '::' keeps both colons before ': '.
WORD_BREAKS = (('":', '" '), (': ', '  '), ('. ', '  '), ('."', ' "'))


def text_words(column: str) -> str:
    sql = column
    for old, new in WORD_BREAKS:
        sql = f"replace({sql}, '{old}', '{new}')"
    return sql


# 14: message and record indexed as text_words() gives them
SQLITE_FTS_TEXT_WORDS = reindexed(text_words("OLD.message"), text_words("OLD.record"))

INDEX_CHUNK = 5000  # alerts per indexing transaction: the sensor's writer waits at most this long
INDEX_EVERY_S = 2.0
CHUNK_S = 0.1  # longest indexing transaction wanted
CATCH_UP_PAUSE_S = 0.02
START_LIMIT = 20000  # alerts a dashboard indexes before it serves (about a second); the rest in the background


def index_pending(conn: sqlite3.Connection, chunk: int = INDEX_CHUNK, limit: int | None = None,
                  pause_s: float = 0.0) -> int:
    """Add the alerts stored since the last call to the SQLite full-text index, a chunk per
    short IMMEDIATE transaction, until none are pending (or `limit` are done); returns how
    many. Raises sqlite3.Error if the store is busy.

    A chunk is at most `chunk` alerts and shrinks while one takes longer than CHUNK_S (a
    loaded machine), so the sensor's writer never waits long for the lock; `pause_s` between
    chunks lets it in during a long catch-up."""
    done = 0
    size = min(chunk, 500)  # grows while chunks are quick
    while limit is None or done < limit:
        if done:
            time.sleep(pause_s)
        started = time.perf_counter()
        with known_immediate(conn):
            # (an external-content table reads its content table for anything but MATCH, so
            # how far the index got is kept beside it)
            last = conn.execute("SELECT last_id FROM alerts_fts_done").fetchone()[0]
            n, high = conn.execute("SELECT count(*), max(id) FROM (SELECT id FROM alerts WHERE id > ? ORDER BY id "
                                   "LIMIT ?)", (last, size if limit is None else min(size, limit - done))).fetchone()
            if n:
                conn.execute(f"INSERT INTO alerts_fts(rowid, message, record) SELECT id, {text_words('message')}, "
                             f"{text_words('record')} FROM alerts WHERE id > ? AND id <= ?", (last, high))
                conn.execute("UPDATE alerts_fts_done SET last_id = ?", (high,))
        done += n
        if n < size and (limit is None or done < limit):
            return done
        took = time.perf_counter() - started
        size = max(100, size // 2) if took > CHUNK_S else min(chunk, size * 2) if took < CHUNK_S / 2 else size
    return done


def status(conn: sqlite3.Connection, latest: int | None = None) -> dict[str, int | bool]:
    """How far the SQLite full-text index got: text search covers alerts with id <= indexed_through
    (`latest`: the newest alert's id, if the caller read it)."""
    last = conn.execute("SELECT last_id FROM alerts_fts_done").fetchone()[0]
    if latest is None:
        latest = conn.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]
    return {"indexed_through": last, "latest_id": latest, "pending": max(0, latest - last), "complete": last >= latest}


class Indexer:
    """The dashboard's background indexer of a SQLite store (a daemon thread). Once a newer
    wirewatch migrated the store (spool.StoreAhead, read in each write transaction) it writes
    nothing more: one line on `log`, and the thread ends (the dashboard goes on serving reads)."""

    def __init__(self, conn: sqlite3.Connection, every_s: float = INDEX_EVERY_S, where: str = "",
                 log: TextIO | None = None):
        self.conn = conn  # read-write, check_same_thread=False; used by this thread only
        self.every_s = every_s
        self.where = where
        self.log = log or sys.stderr
        self.halted = ""  # the line it stopped with
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="wirewatch-fts", daemon=True)

    def start(self) -> Indexer:
        self.thread.start()
        return self

    def _run(self) -> None:
        wait = 0.0  # the first round at once: it catches up with what the start left pending
        while not self.stop.wait(wait):
            wait = self.every_s
            try:
                catch_up_sources(self.conn, pause_s=CATCH_UP_PAUSE_S)  # a storm's per-source roll-ups (store/deferred.py)
                index_pending(self.conn, pause_s=CATCH_UP_PAUSE_S)
            except sqlite3.Error:
                continue  # busy or locked: the next round catches up
            except StoreAhead as exc:
                self.halted = str(exc.refusal(self.where, "the dashboard's indexer stops writing roll-ups and the "
                                                          "search index into it"))
                print(f"wirewatch dashboard: {self.halted}", file=self.log, flush=True)
                return


def catch_up(path: str, limit: int | None = None) -> int:
    """Add every pending alert to the per-source roll-ups (store/deferred.py: what the
    dashboard shows counts every stored alert), then index what is pending now (at most
    `limit`); returns how many were indexed, 0 if the store cannot be written.
    spool.StoreRefused (one line) when a newer wirewatch migrated it."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5)
        try:
            catch_up_sources(conn)
            return index_pending(conn, limit=limit)
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    except StoreAhead as exc:
        raise exc.refusal(path, "the dashboard does not write into it") from None


def fts5_phrase(q: str) -> str:
    """q as an FTS5 phrase query (its double quotes doubled), its words as text_words() indexes
    them (`"flow_id":7` pasted from a record finds it, and "from 10.0.0.1: IP" a message)."""
    for old, new in WORD_BREAKS:
        q = q.replace(old, new)
    return '"' + q.replace('"', '""') + '"'


TSQUERY_PHRASE = "search @@ phraseto_tsquery('simple', ?)"
