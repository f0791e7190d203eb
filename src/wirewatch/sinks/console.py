"""Console sink: `[ALERT] Possible port scan detected from 192.168.1.15`."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from . import SinkBase


def _printable(text: str) -> str:
    """Strip control characters so nothing from a packet can drive the terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class ConsoleSink(SinkBase):
    name = "console"

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    def write(self, alerts: list[dict[str, Any]]) -> None:
        for a in alerts:
            self.stream.write(f"[ALERT] {_printable(a['message'])}\n")
        if alerts:
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
