"""Free-text search over stored alerts, through each store's full-text index.

SQLite: an FTS5 table over the alert's message and record (external content: the text
stays in `alerts`, the index holds only tokens), kept by triggers. Tokenizing each record
costs the writer: an alert storm is stored about 2.5 times slower than without the index
(measured on a loaded 2-core machine: 6,500 -> 2,300 alerts/s), which is the price of
search staying fast at a million alerts. PostgreSQL: the
generated `tsvector` column `alerts.search` with a GIN index (store/postgres_schema.py).
Both tokenize words, so `q` is searched as a phrase of whole words ("port scan" finds
"Possible port scan from ...", "10.3.0.5" finds that address, "scan" does not find "scanner").
"""

from __future__ import annotations

SQLITE_FTS = """
CREATE VIRTUAL TABLE alerts_fts USING fts5(message, record, content='alerts', content_rowid='id');
INSERT INTO alerts_fts(alerts_fts) VALUES ('rebuild');
CREATE TRIGGER alerts_fts_insert AFTER INSERT ON alerts BEGIN
    INSERT INTO alerts_fts(rowid, message, record) VALUES (NEW.id, NEW.message, NEW.record);
END;
CREATE TRIGGER alerts_fts_delete AFTER DELETE ON alerts BEGIN
    INSERT INTO alerts_fts(alerts_fts, rowid, message, record) VALUES ('delete', OLD.id, OLD.message, OLD.record);
END;
"""


def fts5_phrase(q: str) -> str:
    """q as an FTS5 phrase query (its double quotes doubled)."""
    return '"' + q.replace('"', '""') + '"'


TSQUERY_PHRASE = "search @@ phraseto_tsquery('simple', ?)"
