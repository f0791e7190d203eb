"""Syslog sink: each alert as one syslog message whose text is the EVE JSON record.

This is how Suricata's EVE syslog output looks to a collector (rsyslog, syslog-ng, a
SIEM's syslog input): `<PRI>wirewatch: {"timestamp": ..., "event_type": "alert", ...}`.
The transport is the standard library's SysLogHandler (UDP, TCP or a local unix socket
such as /dev/log). The alert's severity picks the syslog level: 1 -> alert, 2 ->
warning, 3 -> notice.
"""

from __future__ import annotations

import json
import logging
import socket
from logging.handlers import SysLogHandler
from typing import Any
from urllib.parse import urlsplit

from ..config import ConfigError
from . import SinkBase

PRIORITIES = {1: "alert", 2: "warning", 3: "notice"}  # alert severity -> syslog priority name
TAG = "wirewatch: "


class _RaisingSysLogHandler(SysLogHandler):
    """Send failures reach the engine (which logs and counts them) instead of a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise

    def mapPriority(self, levelName: str) -> str:
        return levelName  # write() puts the syslog priority name there


def parse_address(address: str) -> tuple[str | tuple[str, int], socket.SocketKind]:
    """udp://HOST:PORT, tcp://HOST:PORT (port 514 if omitted) or a unix socket path."""
    if address.startswith("/"):
        return address, socket.SOCK_DGRAM
    parts = urlsplit(address)
    kinds = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}
    try:
        port = parts.port or 514
    except ValueError:
        port = -1
    if parts.scheme not in kinds or not parts.hostname or port < 0:
        raise ConfigError(f"output.syslog = {address!r}: expected udp://HOST:PORT, tcp://HOST:PORT "
                          f"or a unix socket path such as /dev/log")
    return (parts.hostname, port), kinds[parts.scheme]


class SyslogSink(SinkBase):
    name = "syslog"

    def __init__(self, address: str, facility: str):
        if facility not in SysLogHandler.facility_names:
            raise ConfigError(f"output.syslog_facility = {facility!r}: expected one of "
                              f"{', '.join(sorted(SysLogHandler.facility_names))}")
        where, kind = parse_address(address)
        try:
            self.handler = _RaisingSysLogHandler(where, SysLogHandler.facility_names[facility], kind)
        except OSError as exc:
            raise OSError(f"syslog {address}: {exc.strerror or exc}") from None
        self.handler.append_nul = False
        if kind == socket.SOCK_STREAM:  # one message per line on a stream (RFC 6587 non-transparent framing)
            self.handler.setFormatter(logging.Formatter("%(message)s\n"))

    def write(self, alerts: list[dict[str, Any]]) -> None:
        for a in alerts:
            priority = PRIORITIES.get(int(a.get("alert", {}).get("severity", 3)), "notice")
            text = TAG + json.dumps(a, separators=(", ", ": "))
            self.handler.handle(logging.makeLogRecord({"msg": text, "levelname": priority}))

    def close(self) -> None:
        self.handler.close()
