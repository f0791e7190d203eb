"""Read-only queries the dashboard and API need (the sensors' sinks are the writers), over
SQLite or PostgreSQL: one set of SQL, written with `?` placeholders, and a small dialect
per backend (placeholder, row shape, text search).

Lists use keyset pagination (`before` = an alert id) so page 1000 costs what page 1 does,
and the overview, sensor health and incidents read roll-up tables, so all stay fast with
a million alerts.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from .schema import addr_key, cidr_range, record_of
from .search import TSQUERY_PHRASE, fts5_phrase
from .search import status as search_status
from .spool import StoreAhead
from .tune_runs import LIST as TUNE_LIST
from .tune_runs import ONE as TUNE_ONE
from .tune_runs import OPEN_TIMEOUT_S, run_summary

MAX_AS_NAMES = 200  # AS names an AS filter by part of a name may match
FLEET_TOP = 10  # top sources of the overview
QUIET_AFTER_S = 120.0  # a sensor without a stats event for this long is marked quiet (4 default intervals)
INCIDENT_TIMELINE = 500  # alerts shown on one incident's timeline
NEAR_MISS = 0.5  # the overview lists sources at this fraction of a threshold or more
UPDATE_PAGE = 200  # earlier alerts of its type and flow read at a time to find the alert an update updates
STATS_TERMS = 400  # sensors whose last stats events one statement reads (SQLite: at most 500 terms in a UNION)


class QueryError(ValueError):
    """A bad filter value; the message names the field."""


@dataclass
class AlertFilter:
    type: str = ""
    severity: int | None = None
    src: str = ""  # address or CIDR
    dest: str = ""
    port: int | None = None
    since: float | None = None
    until: float | None = None
    q: str = ""
    acknowledged: bool | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 50
    sensor: str = ""
    country: str = ""  # ISO code of either address (enrichment)
    asn: str = ""  # AS number, or part of its name, of either address (enrichment)


def _like(text: str) -> str:
    """A LIKE pattern (ESCAPE '\\') matching `text` anywhere."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


READ_MMAP_BYTES = 1 << 32  # the most of a SQLite store a dashboard connection maps
SMALL_TIME_RANGE = 5000  # a since/until range with at most this many alerts is read through the time index
# newest alerts a filter not read in id order (address range, text with another filter) looks at first:
# about 1 ms of reading in either store (PostgreSQL fetches each row from the heap: ~1 µs a row)
WINDOW = {"sqlite": 10000, "postgresql": 2000}
# most alerts one condition's index may hold below the page for it to drive an exact read (its
# alerts read, every other condition checked on each, sorted): about 1 ms in either store
SORT_CAP = {"sqlite": 5000, "postgresql": 5000}
# the alert list's columns (and the record, for list_fields)
PAGE_COLUMNS = "id, ts, type, severity, src_ip, dest_ip, src_port, dest_port, proto, message, acknowledged, muted, sensor, record"
TEXT_CHECK_CAP = 200  # alerts of a condition so few that the others (the text) need not be counted


class Queries:
    """The queries; subclasses open the connection and say how their dialect differs."""

    conn: Any
    _join = "JOIN"  # how alert_owners drives a read (SQLite: CROSS JOIN keeps that order)
    _by_time = ""  # how a read is made to go through the time index (SQLite: INDEXED BY)
    # how a read over an address range is ordered: PostgreSQL, with ORDER BY id and a LIMIT,
    # walks the type or id index from the newest alert and filters, which passes over every
    # alert newer than the range's (minutes at 1M); ordering by an expression makes it read
    # the range by its index and sort it, as SQLite does
    _range_order = "a.id"
    _unindexed = "+{}"  # a column no index may read (SQLite: unary plus)
    _unindexed_number = "+{}"
    _below = "+a.id"  # the bound under a window, so that the filter's index reads the rest (not the ids in order)

    def _sql(self, sql: str) -> str:
        return sql

    def _rows(self, sql: str, args: tuple | list = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(self._sql(sql), tuple(args)).fetchall()]

    def _value(self, sql: str, args: tuple | list = ()) -> Any:
        row = self.conn.execute(self._sql(sql), tuple(args)).fetchone()
        return None if row is None else next(iter(dict(row).values()))

    def _text_search(self, q: str, below: int | None = None, at_least: int | None = None) -> tuple[str, list[Any]]:
        """A WHERE clause (and its arguments) for the free-text filter; `below` / `at_least`:
        the ids the read is bounded to (a store whose index answers ids apart takes them)."""
        raise NotImplementedError

    def _owner_terms(self, f: AlertFilter) -> list[list[str]]:
        """Country / AS of either address as owner terms (tables.owner_terms): one list of
        alternatives per filter, every list must match. An AS name filter matches the names
        seen (owner_names, a small table) that contain it."""
        out: list[list[str]] = []
        if f.country:
            out.append([f"c:{f.country.upper()}"])
        if f.asn.isdigit():
            out.append([f"a:{int(f.asn)}"])
        elif f.asn:
            names = self._rows("SELECT name FROM owner_names WHERE name LIKE ? ESCAPE '\\' ORDER BY name LIMIT ?",
                               (_like(f.asn.lower()), MAX_AS_NAMES))
            out.append([f"n:{r['name']}" for r in names] or ["n:"])  # no such name: a term nothing has
        return out

    def _where(self, f: AlertFilter, unindexed: bool = False, below: int | None = None,
               at_least: int | None = None, by_ack: bool = False, no_index: bool = False) -> tuple[str, list[Any]]:
        """The filter as a WHERE clause; `unindexed`: its address ranges written so that no
        index reads them (the read goes by another filter's index or in id order); `below`,
        `at_least`: bounds of the ids the read covers, for the text index; `by_ack`: the read
        walks the index of acknowledged alerts, so no other filter's index may read it;
        `no_index`: no index may read any of it (text a check of each row): the read is driven
        by a condition beside it (_bounded_below)."""
        sql: list[str] = ["1=1"]
        args: list[Any] = []
        by_ack = by_ack or no_index
        unindexed = unindexed or no_index
        col_of = self._unindexed.format if by_ack else str
        for col, value in (("type", f.type), ("sensor", f.sensor)):
            if value:
                sql.append(f"{col_of(f'a.{col}')} = ?")
                args.append(value)
        if f.severity is not None:
            alone = not (f.type or f.sensor or f.src or f.dest or f.port is not None or f.q or f.country or f.asn
                         or f.since is not None or f.until is not None or f.acknowledged)
            if alone:  # a literal: the partial index of severity 1 can read it (tables.SEVERITY_INDEX)
                sql.append(f"a.severity = {int(f.severity)}")
            else:  # `+`: never through the partial index (SQLite would pick it even for a placeholder of 1 and
                sql.append("+a.severity = ?")  # pass over every high alert), the other filter's index reads
                args.append(f.severity)
        for col, value in (("src_key", f.src), ("dest_key", f.dest)):
            if value:
                try:
                    lo, hi = cidr_range(value)
                except ValueError:
                    raise QueryError(f"{col.split('_')[0]}: not an address or CIDR: {value!r}") from None
                if lo == hi:
                    sql.append(f"{col_of(f'a.{col}')} = ?")
                    args.append(lo)
                else:
                    sql.append(f"{self._unindexed.format(f'a.{col}') if unindexed or by_ack else f'a.{col}'} "
                               "BETWEEN ? AND ?")
                    args += [lo, hi]
        ts = self._unindexed_number.format("a.ts") if unindexed or by_ack else "a.ts"
        for bound, cond in ((f.since, f"{ts} >= ?"), (f.until, f"{ts} <= ?"), (f.before, "a.id < ?"),
                            (f.after, "a.id > ?")):
            if bound is not None:
                sql.append(cond)
                args.append(bound)
        if f.q:
            checked = no_index or (unindexed and self._text_checked_in_window)
            clause, more = (self._text_check, [self._text_arg(f.q)]) if checked else \
                self._text_search(f.q, below, at_least)
            sql.append(clause)
            args += more
        for terms in self._owner_terms(f)[1:]:  # the first drives the query (alerts)
            sql.append(f"a.id IN (SELECT id FROM alert_owners WHERE term IN ({','.join('?' * len(terms))}))")
            args += terms
        if f.acknowledged is not None:  # a literal: the partial index of acknowledged alerts reads 1 (tables.py)
            ack = self._unindexed_number.format("a.acknowledged") if no_index else "a.acknowledged"
            sql.append(f"{ack} = {1 if f.acknowledged else 0}")
        return " AND ".join(sql), args

    def alerts(self, f: AlertFilter) -> list[dict[str, Any]]:
        return self.alerts_page(f)[0]

    def alerts_page(self, f: AlertFilter, latest: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page, newest first, and None, or what a bounded read searched (_newest_unordered:
        the page then holds every match with an id from `searched_from` up, none older; the
        next page starts there). Each way of reading it walks one index in id order and
        stops at the page's end: a port is either side (two ordered reads merged), a country
        or AS is read from alert_owners in id order, anything else from its own index. A
        filter whose index is not in id order (an address range; a time range that is not
        small; text with another filter, in PostgreSQL any text) is read by _newest_unordered."""
        order = "ASC" if f.after is not None and f.before is None else "DESC"
        cols = "a.id"  # ids first (an index often covers them: a range is sorted without reading rows), then the page
        owners = self._owner_terms(f)
        # acknowledged alerts are few (tables.ACKNOWLEDGED_INDEX): their index, walked in id order,
        # drives the read whatever else the filter names (not text: SQLite's text read collects its ids)
        by_ack = bool(f.acknowledged) and not owners and not f.q
        where, args = self._where(f, by_ack=by_ack)
        small_time = not owners and not by_ack and self._small_time_range(f)
        unordered = not owners and not by_ack and not small_time and order == "DESC" and self._unordered(f)
        found: set[int] = set()
        bound: dict[str, Any] | None = None
        port = self._unindexed_number.format
        sides = [] if f.port is None else [(f"({port('a.dest_port')} = ? OR {port('a.src_port')} = ?)",
                                            [f.port, f.port])] if by_ack else \
            [("a.dest_port = ?", [f.port]), ("a.src_port = ?", [f.port])]
        sides = sides or [("1=1", [])]
        reads: list[tuple[str, list[Any]]] = []  # the reads in id order
        for cond, more in sides:
            if owners:
                terms = owners[0]
                sql, read_args = (f"SELECT {cols} FROM alert_owners o {self._join} alerts a ON a.id = o.id "
                                  f"WHERE o.term IN ({','.join('?' * len(terms))}) AND {cond} AND {where} "
                                  f"ORDER BY o.id {order} LIMIT ?", [*terms, *more, *args, f.limit])
            elif unordered:
                got, side_bound = self._newest_unordered(f, cond, more, latest)
                found.update(got)
                if side_bound and (bound is None or side_bound["searched_from"] > bound["searched_from"]):
                    bound = side_bound
                continue
            else:
                # (a small time range too: with ORDER BY id PostgreSQL walked the newest alerts and filtered)
                by = self._range_order if (_has_range(f) or small_time) and not by_ack else "a.id"
                sql, read_args = (f"SELECT {cols} FROM alerts a {self._by_time if small_time else ''} WHERE {cond} "
                                  f"AND {where} ORDER BY {by} {order} LIMIT ?", [*more, *args, f.limit])
            reads.append((sql, read_args))
        if len(reads) == len(sides) == 1:  # one read: the page's rows in the same statement (a round trip fewer)
            rows = self._rows(f"SELECT {PAGE_COLUMNS} FROM alerts WHERE id IN ({reads[0][0]})", reads[0][1])
            return self._listed(rows), None
        for sql, read_args in reads:
            found.update(r["id"] for r in self._rows(sql, read_args))
        if bound:  # (a port's other side may have found older matches: the page stops where both were searched)
            found = {i for i in found if i >= bound["searched_from"]}
        page = sorted(found, reverse=order == "DESC")[:f.limit]
        return self._listed(self._page(page)), bound

    @staticmethod
    def _listed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's rows as the list shows them, newest first: who owns each address, and
        which alert an update updates (list_fields)."""
        for r in rows:
            list_fields(r, record_of(r.pop("record")))
        return sorted(rows, key=lambda r: -r["id"])

    _text_unordered = False  # whether text search (q) reads an index that is not in id order
    _dialect = "sqlite"

    def _unordered(self, f: AlertFilter) -> bool:
        """(a time range that is not small is one too: its alerts may be old; and two or more
        conditions: the walk of one's index in id order checks the others on each alert it
        passes, every one of them when they never meet: a type and a sensor that never
        co-occur took 208 ms at 1M)"""
        return _has_range(f) or bool(f.q and self._text_unordered) or f.since is not None or f.until is not None \
            or _conditions(f) > 1

    def _newest_unordered(self, f: AlertFilter, cond: str, more: list[Any],
                          latest: int | None = None) -> tuple[list[int], dict[str, Any] | None]:
        """The newest f.limit ids matching f and cond, for a filter that no one index walk in id
        order serves, at a bounded cost; and None, or what was searched when the answer is
        partial. Walking ids newest first passes over every newer alert when the matches are
        old or rare (PostgreSQL: 1.7 s for a rare word at 1M; a type and a sensor that never
        meet, 208 ms in SQLite), and reading every match by an index and sorting costs as
        many as match (175 ms for a /8 at 1M; a word with a type it never has, 88 ms). So:
        1. the newest WINDOW alerts in id order (ids are dense, so `id >= top - WINDOW`
           bounds the read), where common matches are found: a full page is the answer;
        2. else each condition with an index of its own (_drivers: a port side, type, sensor,
           high severity, address or range, type and source range, time range, the text)
           counts its alerts below the window, at most SORT_CAP + 1, by that index alone (a
           covering read, about 0.35 ms for 5,000 in SQLite; PostgreSQL's text by the
           planner's estimate). One with none: nothing below matches. The one with the fewest,
           if at most SORT_CAP, drives an exact read: its alerts, every other condition checked
           on each (no index may read them), sorted;
        3. else every condition is common below the window, and the answer is what the window
           held, and says so: every match from `searched_from` (top - WINDOW) up, older alerts
           not searched; the next page (before = searched_from) searches on from there."""
        top = f.before if f.before is not None else (self.latest_id() if latest is None else latest) + 1
        floor = f.after + 1 if f.after is not None else 1
        low = max(floor, top - WINDOW[self._dialect])
        where, args = self._where(f, unindexed=True, below=top, at_least=low)
        got = [r["id"] for r in self._rows(f"SELECT a.id FROM alerts a WHERE {cond} AND {where} AND a.id >= ? "
                                           "ORDER BY a.id DESC LIMIT ?", [*more, *args, low, f.limit])]
        if len(got) == f.limit or low <= floor:
            return got, None
        cap = SORT_CAP[self._dialect]
        counts = []
        drivers = self._drivers(f, cond, more)
        common = self._common_below(f, {d[0] for d in drivers}, low)
        for name, sql, args, index in drivers:
            if name in common:
                continue  # (more than cap: it cannot drive)
            n = self._count_below(sql, args, index, low)
            if n == 0:
                return got, None  # a condition no alert below the window meets
            counts.append((n, name, sql, args, index))
            if n <= TEXT_CHECK_CAP:
                break  # (few enough: the others, the text last, need not be counted)
        usable = [c for c in counts if c[0] <= cap and (c[1] == "text" or not f.q or c[0] <= self._text_check_cap)]
        if not usable:
            return got, {"searched_from": low, "searched_below": top,
                         "reason": f"no filter narrows this search to {cap:,} alerts or fewer, so only the "
                                   f"{top - low:,} alerts below #{top:,} were searched"}
        n, name, sql, args, index = min(usable, key=lambda c: c[0])
        where, wargs = self._where(f, no_index=True)
        if name == "text":  # the text drives: its own clause, bounded by the ids, reads its index
            sql, args = self._text_search(f.q, low, None)
        side = "" if cond == "1=1" or name == "port" else self._unindexed_number.format(cond.split(" ")[0]) + " = ? AND "
        return got + [r["id"] for r in self._rows(
            f"SELECT a.id FROM alerts a {self._index_hint(index)} WHERE {sql} AND {side}{where} "
            f"AND {self._below} < ? ORDER BY {self._range_order} DESC LIMIT ?",
            [*args, *(more if side else []), *wargs, low, f.limit - len(got)])], None

    def _common_below(self, f: AlertFilter, names: set[str], low: int) -> set[str]:
        """Which of the type and sensor conditions (of `names`) the roll-ups show to hold more
        than SORT_CAP alerts below `low`, so that they need not be counted (two that never
        meet were counted to 5,001 each: two thirds of such a request's reads). alert_types
        and sensor_types count the alerts not muted, in the writer's transaction: at least
        that count minus the max(id) + 1 - low alerts from `low` up lie below it. One
        statement, so the counts and max(id) are of one snapshot."""
        parts = [(name, sql, value) for name, sql, value in (
            ("type", "(SELECT count FROM alert_types WHERE type = ?)", f.type),
            ("sensor", "(SELECT sum(count) FROM sensor_types WHERE sensor = ?)", f.sensor)) if name in names]
        if not parts:
            return set()
        (row,) = self._rows(f"SELECT (SELECT coalesce(max(id), 0) FROM alerts) AS top, "
                            f"{', '.join(f'{sql} AS {name}' for name, sql, _ in parts)}", [v for _, _, v in parts])
        above = row["top"] + 1 - low
        return {name for name, _, _ in parts if (row[name] or 0) - above > SORT_CAP[self._dialect]}

    def _drivers(self, f: AlertFilter, cond: str, more: list[Any]) -> list[tuple[str, str, list[Any], str]]:
        """The conditions of f (and cond, a port side) that an index of their own reads: (name,
        SQL, arguments, SQLite index), cheapest to count first; the text last."""
        out: list[tuple[str, str, list[Any], str]] = []
        if cond != "1=1":
            out.append(("port", cond, list(more), "alerts_dport" if "dest_port" in cond else "alerts_sport"))
        composite = bool(f.type and _has_range(AlertFilter(src=f.src)))  # (its alerts are some of the type's)
        for col, value in (("type", "" if composite else f.type), ("sensor", f.sensor)):
            if value:
                out.append((col, f"a.{col} = ?", [value], f"alerts_{col}"))
        if f.severity == 1:  # (the partial index of high severity: tables.SEVERITY_INDEX)
            out.append(("severity", "a.severity = 1", [], "alerts_severity"))
        for side, value in (("src", f.src), ("dest", f.dest)):
            if value:
                lo, hi = cidr_range(value)
                if lo == hi:
                    out.append((side, f"a.{side}_key = ?", [lo], f"alerts_{side}"))
                elif side == "src" and f.type:  # type and source range: one composite index
                    out.append((side, "a.type = ? AND a.src_key BETWEEN ? AND ?", [f.type, lo, hi], "alerts_type_src"))
                else:
                    out.append((side, f"a.{side}_key BETWEEN ? AND ?", [lo, hi], f"alerts_{side}"))
        bounds = [(c, v) for c, v in (("a.ts >= ?", f.since), ("a.ts <= ?", f.until)) if v is not None]
        if bounds and SORT_CAP[self._dialect] > SMALL_TIME_RANGE:  # (else it has more, as alerts() found)
            out.append(("time", " AND ".join(c for c, _ in bounds), [v for _, v in bounds], "alerts_ts"))
        if f.q:
            out.append(("text", *self._text_search(f.q), ""))
        return out

    def _count_below(self, sql: str, args: list[Any], index: str, top: int) -> int:
        """How many alerts below `top` meet sql (one condition), counting at most SORT_CAP + 1,
        by that condition's index."""
        return int(self._value(f"SELECT count(*) AS n FROM (SELECT 1 FROM alerts a {self._index_hint(index)} "
                               f"WHERE {sql} AND {self._below} < ? {self._index_order(index)} LIMIT ?) c",
                               [*args, top, SORT_CAP[self._dialect] + 1]))

    def _index_hint(self, index: str) -> str:
        return ""

    def _index_order(self, index: str) -> str:
        """(PostgreSQL: an ORDER BY only this index gives, so that a count with a LIMIT reads it: without
        one the planner read the table from its start instead, 8.5 ms for a time range of old alerts,
        seconds a request under 20 clients)"""
        return ""

    _text_check = ""  # text as a check of one row (no index reads it)
    _text_checked_in_window = False  # whether the window's read checks the text row by row
    _text_check_cap = 10 ** 9  # most alerts another condition may drive when the text is checked row by row

    def _text_arg(self, q: str) -> str:
        return q

    def _page(self, ids: list[int]) -> list[dict[str, Any]]:
        """The alert list's columns of these alerts (any order)."""
        if not ids:
            return []
        return self._rows(f"SELECT {PAGE_COLUMNS} FROM alerts WHERE id IN ({','.join('?' * len(ids))})", ids)

    def _small_time_range(self, f: AlertFilter) -> bool:
        """Whether since/until select few alerts (e.g. a `since` after the newest): then the
        time index finds them and they are sorted, where reading in id order would pass
        over every alert outside the range (a million, for none)."""
        if f.since is None and f.until is None:
            return False
        n = self._value("SELECT count(*) AS n FROM (SELECT 1 FROM alerts WHERE ts >= ? AND ts <= ? LIMIT ?) r",
                        (f.since if f.since is not None else float("-inf"),
                         f.until if f.until is not None else float("inf"), SMALL_TIME_RANGE + 1))
        return int(n) <= SMALL_TIME_RANGE

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT id, ts, type, severity, src_ip, dest_ip, src_key, dest_key, src_port, dest_port, proto, "
                          "message, record, acknowledged, muted, sensor FROM alerts WHERE id = ?", (alert_id,))
        if not rows:
            return None
        out = rows[0]
        out["record"] = record_of(out["record"])
        return out

    def search_status(self, latest: int | None = None) -> dict[str, Any]:
        """How far the full-text index got (SQLite indexes in the background, search.py):
        text search covers the alerts with id <= indexed_through. `latest`: latest_id(), if
        the caller read it already."""
        latest = self.latest_id() if latest is None else latest
        return {"indexed_through": latest, "latest_id": latest, "pending": 0, "complete": True}

    def updated_alert(self, alert_id: int, record: dict[str, Any]) -> int | None:
        """The id of the alert that this one (`record`, an update: `update_of`) updates: the
        latest earlier alert of its type with the flow_id and timestamp update_of names (an
        update comes after its alert), read newest first on the (type, flow_id, id) index, so
        any number of other alerts may lie between them; a flow's repeats are read
        UPDATE_PAGE at a time. Then, on the same index, alerts without a flow_id: an older
        sensor's, written after the migration (README, Upgrading). None when it is not there
        (retention removed it)."""
        ref = record.get("update_of")
        if not isinstance(ref, dict) or type(ref.get("flow_id")) is not int:
            return None
        typ, fid = record.get("type", ""), ref["flow_id"]
        for flow, args in (("flow_id = ?", (typ, fid)), ("flow_id IS NULL", (typ,))):
            below = alert_id
            while True:
                rows = self._rows(f"SELECT id, record FROM alerts WHERE type = ? AND {flow} AND id < ? "
                                  "ORDER BY id DESC LIMIT ?", (*args, below, UPDATE_PAGE))
                for r in rows:
                    rec = record_of(r["record"])
                    if rec.get("flow_id") == fid and rec.get("timestamp") == ref.get("timestamp") \
                            and "update_of" not in rec:
                        return int(r["id"])
                if len(rows) < UPDATE_PAGE:
                    break
                below = int(rows[-1]["id"])
        return None

    def latest_id(self) -> int:
        return self._value("SELECT coalesce(max(id), 0) AS n FROM alerts") or 0

    def overview(self, minutes: int = 60, sensor: str = "") -> dict[str, Any]:
        """Charts and totals, for the whole fleet or one sensor."""
        # (the last `minutes` up to the newest minute, found in the same statement: a round trip fewer)
        if sensor:
            per = self._rows("SELECT minute, sum(count) AS n FROM sensor_minutes WHERE sensor = ? AND minute > "
                             "(SELECT max(minute) FROM sensor_minutes WHERE sensor = ?) - ? GROUP BY minute ORDER BY minute",
                             (sensor, sensor, minutes))
            by_type = {r["type"]: int(r["count"]) for r in self._rows(
                "SELECT type, count FROM sensor_types WHERE sensor = ? AND count > 0 ORDER BY count DESC", (sensor,))}
            top = self._rows("SELECT src_ip, count FROM sensor_sources WHERE sensor = ? ORDER BY count DESC LIMIT ?",
                             (sensor, FLEET_TOP))
        else:
            per = self._rows("SELECT minute, sum(count) AS n FROM alert_minutes WHERE minute > "
                             "(SELECT max(minute) FROM alert_minutes) - ? GROUP BY minute ORDER BY minute", (minutes,))
            by_type = {r["type"]: int(r["count"]) for r in self._rows(
                "SELECT type, count FROM alert_types WHERE count > 0 ORDER BY count DESC")}
            top = self._rows("SELECT src_ip, count FROM alert_sources ORDER BY count DESC LIMIT ?", (FLEET_TOP,))
        stats = self._stats(sensor)
        owners = self.owners([r["src_ip"] for r in top])
        return {"alerts_per_minute": [{"t": r["minute"] * 60, "alerts": int(r["n"])} for r in per],
                "alerts_by_type": by_type, "top_sources": [{"src_ip": r["src_ip"], "count": int(r["count"]),
                                 "owner": owners[r["src_ip"]]} for r in top],
                "packets_per_s": _fleet_rates(stats), "health": _health(_latest(stats)),
                "top_talkers": _talkers(_latest(stats)), "total_alerts": sum(by_type.values()),
                "sensor": sensor}

    def _stats(self, sensor: str) -> dict[str, list[dict[str, Any]]]:
        """The last 120 stats events of each sensor (or of one), oldest first."""
        names = [sensor] if sensor else [r["sensor"] for r in self._rows("SELECT sensor FROM sensors")]
        if not names:  # a store written before sensors were tracked
            names = [""]
        # one statement per STATS_TERMS sensors, an index read of each one's last 120 (a round trip
        # per sensor cost more than its read: a fifth of a PostgreSQL overview's CPU; SQLite takes at
        # most 500 terms in one compound SELECT)
        rows: list[dict[str, Any]] = []
        for lo in range(0, len(names), STATS_TERMS):
            part = names[lo:lo + STATS_TERMS]
            rows += self._rows(" UNION ALL ".join(
                f"SELECT * FROM (SELECT sensor, id, ts, record FROM stats WHERE sensor = ? ORDER BY id DESC LIMIT 120) s{i}"
                for i in range(len(part))), part)
        out: dict[str, list[dict[str, Any]]] = {}
        for r in sorted(rows, key=lambda r: r["id"]):
            out.setdefault(r["sensor"], []).append(record_of(r["record"]) | {"_ts": r["ts"]})
        return {name: out[name] for name in names if name in out}

    def sensors(self, now: float | None = None) -> list[dict[str, Any]]:
        """Per-sensor health from each sensor's last two stats events; `quiet` when the last
        one is older than QUIET_AFTER_S (wall clock: it is about the sensor, not its packets)."""
        now = time.time() if now is None else now
        alerts = {r["sensor"]: int(r["n"]) for r in self._rows(
            "SELECT sensor, sum(count) AS n FROM sensor_types GROUP BY sensor")}
        out = []
        for r in self._rows("SELECT sensor, first_seen, last_seen, record, prev_seen, prev_record FROM sensors "
                            "ORDER BY sensor"):
            cur = record_of(r["record"])
            st = cur["stats"]
            pps = None
            if r["prev_record"] and r["last_seen"] > r["prev_seen"]:
                prev = record_of(r["prev_record"])["stats"]
                pps = max(0.0, (st["decoder"]["pkts"] - prev["decoder"]["pkts"]) / (r["last_seen"] - r["prev_seen"]))
            out.append({"sensor": r["sensor"], "first_seen": r["first_seen"], "last_seen": r["last_seen"],
                        "age_s": max(0.0, now - r["last_seen"]), "quiet": now - r["last_seen"] > QUIET_AFTER_S,
                        "interface": cur.get("in_iface"), "uptime_s": st.get("uptime"), "final": st.get("final", False),
                        "packets": st["decoder"]["pkts"], "packets_per_s": pps,
                        "kernel_drops": st["capture"]["kernel_drops"], "decode_errors": st["decoder"]["invalid"],
                        "alerts": alerts.get(r["sensor"], 0)})
        return out

    def incidents(self, sensor: str = "", limit: int = 50) -> list[dict[str, Any]]:
        """Alerts grouped by attacker (alert.source.ip, else src_ip) across detectors and
        sensors, most recent first."""
        if sensor:
            top = self._rows("SELECT src_ip FROM sensor_sources WHERE sensor = ? AND +count > 0 ORDER BY last_ts DESC "
                             "LIMIT ?", (sensor, limit))
        else:
            top = self._fleet_recent(limit)
        if not top:
            return []
        marks = ",".join("?" * len(top))
        parts = self._rows(f"SELECT src_ip, sensor, type, count, first_ts, last_ts FROM source_activity "
                           f"WHERE src_ip IN ({marks}) AND count > 0", [t["src_ip"] for t in top])
        grouped: dict[str, dict[str, Any]] = {t["src_ip"]: {"src_ip": t["src_ip"], "alerts": 0, "first_seen": None,
                                                            "last_seen": None, "types": {}, "sensors": {}} for t in top}
        for p in parts:
            g = grouped[p["src_ip"]]
            n = int(p["count"])
            g["alerts"] += n
            g["types"][p["type"]] = g["types"].get(p["type"], 0) + n
            g["sensors"][p["sensor"]] = g["sensors"].get(p["sensor"], 0) + n
            g["first_seen"] = p["first_ts"] if g["first_seen"] is None else min(g["first_seen"], p["first_ts"])
            g["last_seen"] = p["last_ts"] if g["last_seen"] is None else max(g["last_seen"], p["last_ts"])
        return [grouped[t["src_ip"]] for t in top]

    def incident(self, src_ip: str) -> list[dict[str, Any]]:
        """One attacker's alerts, newest first (its timeline), across detectors and sensors."""
        try:
            key = addr_key(src_ip)
        except (ValueError, OSError):
            raise QueryError(f"src: not an address: {src_ip!r}") from None
        cols = "id, ts, type, severity, sensor, src_ip, dest_ip, dest_port, message, muted"
        rows = {r["id"]: r for side in ("src", "dest") for r in self._rows(
            f"SELECT {cols} FROM alerts WHERE {side}_key = ? AND attacker = {side}_ip ORDER BY id DESC LIMIT ?",
            (key, INCIDENT_TIMELINE))}  # the attacker is one of the two addresses: two ordered reads
        return sorted(rows.values(), key=lambda r: -r["id"])[:INCIDENT_TIMELINE]

    def _sensors_with_sources(self) -> list[str]:
        """The sensors in sensor_sources, one index seek each (a skip scan, not a scan)."""
        return [r["s"] for r in self._rows(
            "WITH RECURSIVE n(s) AS (SELECT min(sensor) FROM sensor_sources UNION ALL "
            "SELECT (SELECT min(sensor) FROM sensor_sources WHERE sensor > n.s) FROM n WHERE n.s IS NOT NULL) "
            "SELECT s FROM n WHERE s IS NOT NULL")]

    def _fleet_recent(self, limit: int) -> list[dict[str, Any]]:
        """The `limit` attackers seen last over all sensors: each sensor's last `limit` by
        index, merged (an attacker's fleet-wide last time is its latest on some sensor, so
        the merge of the sensors' heads is exact)."""
        best: dict[str, float] = {}
        for name in self._sensors_with_sources():
            for r in self._rows("SELECT src_ip, last_ts FROM sensor_sources WHERE sensor = ? AND +count > 0 "
                                "ORDER BY last_ts DESC LIMIT ?", (name, limit)):
                best[r["src_ip"]] = max(best.get(r["src_ip"], r["last_ts"]), r["last_ts"])
        return [{"src_ip": ip} for ip, _ in sorted(best.items(), key=lambda kv: -kv[1])[:limit]]

    def sensor_names(self) -> list[str]:
        return [r["sensor"] for r in self._rows("SELECT sensor FROM sensors ORDER BY sensor")]

    def owner(self, ip: str) -> dict[str, Any]:
        """Country / AS / label of an address, from the enrichment of its latest alert as
        source, else as destination (an attacker may be either; both keys are indexed)."""
        return self.owners([ip])[ip]

    def owners(self, ips: list[str]) -> dict[str, dict[str, Any]]:
        """owner() of each address: one statement per side for all of them (an index seek
        each), not two round trips per address (20 of an overview's 29 statements)."""
        out: dict[str, dict[str, Any]] = {ip: {} for ip in ips}
        pending = {ip: addr_key(ip) for ip in dict.fromkeys(ips)}
        for side in ("src", "dest"):
            if not pending:
                break
            rows = self._rows(" UNION ALL ".join(
                f"SELECT * FROM (SELECT {side}_key AS k, record FROM alerts WHERE {side}_key = ? "
                f"ORDER BY id DESC LIMIT 1) o{i}" for i in range(len(pending))), list(pending.values()))
            by_key = {r["k"]: r["record"] for r in rows}
            for ip, key in list(pending.items()):
                found = record_of(by_key[key]).get("enrichment", {}).get(side, {}) if key in by_key else {}
                if found:
                    out[ip] = found
                    del pending[ip]
        return out

    def mutes(self) -> list[dict[str, Any]]:
        now = time.time()
        return [r | {"active": r["until"] > now} for r in self._rows("SELECT * FROM mutes ORDER BY id DESC LIMIT 200")]

    def counts_by_type(self) -> dict[str, int]:
        return {r["type"]: int(r["count"]) for r in self._rows("SELECT type, count FROM alert_types")}

    def latest_stats(self) -> dict[str, Any] | None:
        rows = self._rows("SELECT record FROM stats ORDER BY id DESC LIMIT 1")
        return record_of(rows[0]["record"]) if rows else None

    def near_misses(self, sensor: str = "") -> list[dict[str, Any]]:
        """Per sensor (or for one), the sources at >= NEAR_MISS of a threshold in its latest
        stats event (`stats.near_misses`), highest fraction first."""
        where, args = ("WHERE sensor = ?", (sensor,)) if sensor else ("", ())
        out = []
        for r in self._rows(f"SELECT sensor, last_seen, record FROM sensors {where} ORDER BY sensor", args):
            stats = record_of(r["record"]).get("stats", {})
            entries = near_miss_entries(stats.get("near_misses") if isinstance(stats, dict) else None)
            out.append({"sensor": r["sensor"], "updated": r["last_seen"], "near_misses": entries})
        return out

    def tune_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Saved `wirewatch tune` runs, newest first (without their documents)."""
        return [run_summary(r) for r in self._rows(TUNE_LIST, (limit,))]

    def tune_run(self, run_id: int) -> dict[str, Any] | None:
        """One saved tune run with its document (tune --format json), or None."""
        rows = self._rows(TUNE_ONE, (run_id,))
        return run_summary(rows[0]) | {"document": record_of(rows[0]["document"])} if rows else None

    def close(self) -> None:
        self.conn.close()


class Store(Queries):
    """The embedded store, opened read-only (the sensor's SqliteSink is its writer)."""

    def __init__(self, path: str):
        self.path = path
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        # pages read straight from the OS's cache (shared by the dashboard's connections and
        # threads) instead of copied into each connection's own 2 MB cache
        self.conn.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")

    _join = "CROSS JOIN"
    _by_time = "INDEXED BY alerts_ts"

    def _rows(self, sql: str, args: tuple | list = ()) -> list[dict[str, Any]]:
        # plain tuples zipped with the statement's column names: a sqlite3.Row copied into a
        # dict cost twice as much (a tenth of a page's CPU)
        cur = self.conn.execute(sql, tuple(args))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def _value(self, sql: str, args: tuple | list = ()) -> Any:
        row = self.conn.execute(sql, tuple(args)).fetchone()
        return None if row is None else row[0]

    def search_status(self, latest: int | None = None) -> dict[str, Any]:
        return search_status(self.conn, latest)

    # text with other filters: the matches' ids are collected from the index (every one of
    # them, 0.6 s for a word in every alert at 1M), so they are read for a window at a time
    _text_unordered = True

    def _text_search(self, q: str, below: int | None = None, at_least: int | None = None) -> tuple[str, list[Any]]:
        bounds = ""
        args: list[Any] = [fts5_phrase(q)]
        for bound, cond in ((below, "rowid < ?"), (at_least, "rowid >= ?")):
            if bound is not None:
                bounds += f" AND {cond}"
                args.append(bound)
        return f"a.id IN (SELECT rowid FROM alerts_fts WHERE alerts_fts MATCH ?{bounds})", args

    def _index_hint(self, index: str) -> str:
        return f"INDEXED BY {index}" if index else ""

    def _count_below(self, sql: str, args: list[Any], index: str, top: int) -> int:
        if index:
            return super()._count_below(sql, args, index, top)
        # the text: its index walked to SORT_CAP + 1 matches (through `alerts`, every match's id was collected first)
        return int(self._value("SELECT count(*) AS n FROM (SELECT rowid FROM alerts_fts WHERE alerts_fts MATCH ? "
                               "AND rowid < ? LIMIT ?)", [args[0], top, SORT_CAP[self._dialect] + 1]))

    # text checked on each row of another condition's read: about 20 µs a row (the index
    # looked up by rowid), so only for a condition of at most TEXT_CHECK_CAP alerts
    _text_check = "EXISTS (SELECT 1 FROM alerts_fts WHERE alerts_fts MATCH ? AND rowid = a.id)"
    _text_check_cap = TEXT_CHECK_CAP

    def _text_arg(self, q: str) -> str:
        return fts5_phrase(q)

    def alerts_page(self, f: AlertFilter, latest: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Text search alone (the common case) asks the index for just one page, newest
        first, instead of every match: the index walks its rowids in order."""
        only_text = f.q and f.after is None and AlertFilter(q=f.q, before=f.before, limit=f.limit) == f
        if not only_text:
            return super().alerts_page(f, latest)
        keyset, args = ("AND rowid < ?", [f.before]) if f.before is not None else ("", [])
        rows = self._rows(
            f"SELECT {PAGE_COLUMNS} FROM alerts WHERE id IN (SELECT rowid FROM alerts_fts WHERE alerts_fts MATCH ? "
            f"{keyset} ORDER BY rowid DESC LIMIT ?)", (fts5_phrase(f.q), *args, f.limit))
        return self._listed(rows), None


class PostgresStore(Queries):
    """A fleet's shared store, read through a read-only psycopg connection."""

    _range_order = "a.id + 0"
    _unindexed = "({} || '')"
    _unindexed_number = "({} + 0)"
    _below = "a.id"
    # a GIN index finds a word's alerts in no order: a rare word's few are read by it and
    # sorted, a common word's newest page by walking ids (_newest_unordered)
    _text_unordered = True
    _dialect = "postgresql"

    def __init__(self, url: str):
        from psycopg.rows import dict_row

        from .postgres_schema import connect
        self.path = url
        self.conn = connect(url, read_only=True, autocommit=True)
        self.conn.row_factory = dict_row
        # psycopg prepares a statement run 5 times, and after 5 more PostgreSQL may plan it once
        # for any values (a generic plan): the read below a window of a rare word then walked
        # every id (66 ms at 1M, a second per request under 20 clients). Each read is planned
        # for its own values (a fraction of a millisecond)
        self.conn.execute("SET plan_cache_mode = force_custom_plan")
        # no JIT compilation: it pays off for long analytical queries, and the dashboard's reads take
        # a millisecond. A plan the planner costs above jit_above_cost (100,000: a word's estimate
        # planned as a test of each row, a common word's bitmap) had its expressions compiled even
        # for an EXPLAIN: 2.06 ms for the estimate of 10.2.3.4 at 1M, 0.2 ms without
        self.conn.execute("SET jit = off")

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _rows(self, sql: str, args: tuple | list = ()) -> list[dict[str, Any]]:
        return self.conn.execute(self._sql(sql), tuple(args)).fetchall()  # (dict_row: dicts already)

    def _text_search(self, q: str, below: int | None = None, at_least: int | None = None) -> tuple[str, list[Any]]:
        return "a." + TSQUERY_PHRASE, [q]  # (the ids are bounded beside it, where the planner sees them)

    _INDEX_COLUMNS = {"alerts_type": "a.type, a.id", "alerts_sensor": "a.sensor, a.id", "alerts_src": "a.src_key, a.id",
                      "alerts_dest": "a.dest_key, a.id", "alerts_type_src": "a.type, a.src_key, a.id", "alerts_ts": "a.ts",
                      "alerts_dport": "a.dest_port, a.id", "alerts_sport": "a.src_port, a.id",
                      "alerts_severity": "a.severity, a.id"}

    def _index_order(self, index: str) -> str:
        return f"ORDER BY {self._INDEX_COLUMNS[index]}" if index in self._INDEX_COLUMNS else ""

    _text_check = f"(a.{TSQUERY_PHRASE}) IS TRUE"  # (a test of the row's stored tsvector: the GIN index cannot read it)
    # (else the planner may AND the window's ids with the word's GIN bitmap: every match of a common
    # word read, 44 ms, when its statistics count fewer new ids than the window holds)
    _text_checked_in_window = True
    _text_check_cap = 1000  # (about 3.5 µs a row: its tsvector read from the row)

    def _count_below(self, sql: str, args: list[Any], index: str, top: int) -> int:
        if index:
            # `col = ?` as `col BETWEEN ? AND ?`: the planner drops an ORDER BY column equal to a constant,
            # and then walked the id index from the oldest alert, passing over every alert of other values
            parts = sql.split("?")
            ranged, rargs = parts[0], []  # type: tuple[str, list[Any]]
            for arg, part in zip(args, parts[1:]):
                if ranged.endswith(" = "):
                    ranged, rargs = ranged[:-3] + " BETWEEN ? AND ", [*rargs, arg, arg]
                else:
                    rargs.append(arg)
                ranged += "?" + part
            return super()._count_below(ranged, rargs, index, top)
        # the text: the planner's estimate from the column's statistics (its common words are counted
        # there). Counting through the GIN index reads a word's every match (110 ms for one in 111,000
        # alerts at 1M: its index has them in no order), with a LIMIT the planner reads the table instead.
        # Planned as a test of each row (_text_check: the same estimate), so that the GIN index is not
        # costed: that reads its metapage, and waited behind a writer merging the pending list (under a
        # writer at 1M: p50 0.60 -> 0.40 ms, the slowest of 1,500 39-57 -> 9-16 ms)
        (plan,) = self._value("EXPLAIN (FORMAT JSON) SELECT 1 FROM alerts a WHERE " + self._text_check, args)
        return max(1, int(plan["Plan"]["Plan Rows"]))  # (an estimate is never taken for "none")


def _conditions(f: AlertFilter) -> int:
    """How many conditions on the alerts' columns f names (not its page bounds)."""
    return sum(1 for v in (f.type, f.sensor, f.src, f.dest, f.q, f.country, f.asn) if v) + sum(
        1 for v in (f.port, f.severity, f.acknowledged, f.since if f.since is not None else f.until) if v is not None)


def _has_range(f: AlertFilter) -> bool:
    """Whether a source or destination filter is a range of addresses (a CIDR wider than one)."""
    return any(v and "/" in v and cidr_range(v)[0] != cidr_range(v)[1] for v in (f.src, f.dest))


def open_store(url: str) -> Queries:
    from .postgres_schema import is_postgres
    return PostgresStore(url) if is_postgres(url) else Store(url)


def refuse_newer(url: str, what: str) -> None:
    """A reader's check of the store's schema (extract before it reads; tune before a pass whose
    run it saves): spool.StoreRefused, one line naming the store (the file, or the URL without its
    password), both versions and `what` this wirewatch does not do with it, when a newer
    wirewatch migrated it. Read-only: the store is neither created nor migrated (an older one is
    read as it is); a missing one, or one without a schema yet, passes (its reader says so)."""
    from .postgres_schema import is_postgres, shown
    where = shown(url)
    if is_postgres(url):
        import psycopg

        from .postgres_schema import MIGRATIONS, connect
        conn = connect(url, read_only=True, autocommit=True)  # OSError naming the database if it is unreachable
        try:
            row = conn.execute("SELECT version FROM schema_version").fetchone()
        except psycopg.Error:  # no schema yet
            return
        finally:
            conn.close()
    else:
        from .schema import MIGRATIONS
        if not os.path.exists(url):
            return
        try:
            conn = sqlite3.connect(f"file:{url}?mode=ro", uri=True, timeout=OPEN_TIMEOUT_S)
            try:
                row = conn.execute("SELECT version FROM schema_version").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:  # not a store yet, or busy: the reader says which
            return
    if row is not None and row[0] > len(MIGRATIONS):
        raise StoreAhead(row[0], len(MIGRATIONS)).refusal(where, what)


def _latest(stats: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The events of the sensor that reported last."""
    return max(stats.values(), key=lambda s: s[-1]["_ts"]) if stats else []


def _fleet_rates(stats: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Packets/s of one sensor, or of the fleet: each sensor's rates averaged per minute,
    summed over sensors."""
    if len(stats) <= 1:
        return _rates(next(iter(stats.values()), []))
    buckets: dict[float, float] = {}
    for events in stats.values():
        per: dict[float, list[float]] = {}
        for r in _rates(events):
            per.setdefault(r["t"] // 60 * 60, []).append(r["pps"])
        for t, values in per.items():
            buckets[t] = buckets.get(t, 0.0) + sum(values) / len(values)
    return [{"t": t, "pps": v} for t, v in sorted(buckets.items())]


def _rates(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Packets/s between consecutive stats events; for an analysed capture (its event
    carries a packet-time timeline) the capture's own rate over its packet time."""
    if stats and "timeline" in stats[-1]["stats"]:
        return stats[-1]["stats"]["timeline"]
    out = []
    for prev, cur in zip(stats, stats[1:]):
        dt = cur["_ts"] - prev["_ts"]
        if dt > 0:
            dp = cur["stats"]["decoder"]["pkts"] - prev["stats"]["decoder"]["pkts"]
            out.append({"t": cur["_ts"], "pps": max(0.0, dp / dt)})
    return out


def _health(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """The overview's cards from the latest stats event. `offline`: a `wirewatch read`'s event (it
    carries a packet-time timeline, as _rates says), whose uptime is the read's wall time."""
    if not stats:
        return {}
    s = stats[-1]
    st = s["stats"]
    return {"interface": s.get("in_iface"), "uptime_s": st.get("uptime"), "offline": "timeline" in st,
            "updated": s.get("timestamp"),
            "packets": st["decoder"]["pkts"], "kernel_packets": st["capture"]["kernel_packets"],
            "kernel_drops": st["capture"]["kernel_drops"], "decode_errors": st["decoder"]["invalid"],
            "sensor": s.get("host")}


def list_fields(row: dict[str, Any], record: dict[str, Any]) -> None:
    """What the alert list shows beside the columns: who owns each address, and for an update
    (`update_of`) the alert it updates (its timestamp and message; /alerts/ID/updated links it)."""
    row["enrichment"] = record.get("enrichment", {})
    ref = record.get("update_of")
    if isinstance(ref, dict):
        row["update_of"] = {"timestamp": str(ref.get("timestamp", "")), "message": str(ref.get("message", ""))}


def near_miss_entries(raw: Any) -> list[dict[str, Any]]:
    """The well-formed entries of a stats event's `near_misses` (a sensor wrote them, but what
    a store holds is read defensively): a text and a fraction in [NEAR_MISS, 1), highest first."""
    if not isinstance(raw, list):
        return []
    out = []
    for e in raw:
        if not isinstance(e, dict) or not isinstance(e.get("text"), str) or not isinstance(e.get("detector"), str):
            continue
        f = e.get("fraction")
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not NEAR_MISS <= f < 1:
            continue
        out.append(e)
    return sorted(out, key=lambda e: (-e["fraction"], e["detector"], e["text"]))


def _talkers(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return stats[-1]["stats"].get("top_talkers", []) if stats else []
