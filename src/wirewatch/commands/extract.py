"""`wirewatch extract ALERT_ID -o OUT.pcap`: a stored alert's packets, as a pcap file (`-o -`: on
standard output)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from ..alert_pcap import PacketsError, alert_pcap
from ..cli import quiet_stdout
from ..config import DEFAULT_DB, Config
from ..store.postgres_schema import shown
from ..store.queries import open_store, refuse_newer
from ..store.spool import StoreRefused

EXIT_USAGE = 2
INT64_MAX = 2**63 - 1


def cmd_extract(args: argparse.Namespace, cfg: Config) -> int:
    db = cfg.output.db or DEFAULT_DB
    where = shown(db)  # a PostgreSQL URL's password stays off the terminal and the logs
    try:
        alert_id = int(args.alert_id)
        if not 0 < alert_id <= INT64_MAX:
            raise ValueError
    except ValueError:
        return _fail(f"ALERT_ID: {args.alert_id!r} is not an alert id (a whole number from 1)")
    if "://" not in db and not os.path.exists(db):
        return _fail(f"{where}: no such alert store")
    try:
        refuse_newer(db, "extract does not read it")  # read-only: an older store is read as it is
        store = open_store(db)
        try:
            alert = store.alert(alert_id)
        finally:
            store.close()
    except (StoreRefused, OSError) as exc:  # (OSError: postgres_schema.connect's line, naming the database)
        return _fail(str(exc))
    except sqlite3.DatabaseError as exc:
        return _fail(f"{where}: not a readable alert store ({exc})")
    if alert is None:
        return _fail(f"{where}: no alert {alert_id}")
    try:
        data = alert_pcap(alert["record"], cfg.output.pcap_dir)
    except PacketsError as exc:
        return _fail(f"alert {alert_id}: {exc}")
    if args.output == "-":
        return _to_stdout(data)
    try:
        with open(args.output, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        return _fail(f"{args.output}: cannot write: {exc.strerror}")
    return 0


def _to_stdout(data: bytes) -> int:
    """`-o -`: the pcap on standard output (as tcpdump -w -), never onto a terminal. Standard
    output closed, or its reader gone before the pcap was whole (| head -c 10), is one line and
    exit 2: the pcap was not delivered."""
    if sys.stdout is None:  # started with standard output closed (>&-)
        return _fail("standard output: closed; nowhere to write the pcap (-o OUT.pcap writes a file)")
    out = sys.stdout.buffer
    if out.isatty():
        return _fail("-o -: standard output is a terminal; redirect it (> OUT.pcap) or pipe it (| tcpdump -r -)")
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:
        quiet_stdout()
        return _fail(f"standard output: the reader closed the pipe before the pcap was whole ({len(data):,} bytes)")
    except OSError as exc:
        return _fail(f"standard output: cannot write: {exc.strerror}")
    return 0


def _fail(message: str) -> int:
    print(f"wirewatch: {message}", file=sys.stderr)
    return EXIT_USAGE
