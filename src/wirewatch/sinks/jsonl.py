"""JSON-lines sink: one EVE-style object per line, appended, flushed per batch."""

from __future__ import annotations

import json
import os
from typing import Any

from . import SinkBase


class JsonlSink(SinkBase):
    name = "jsonl"

    def __init__(self, path: str):
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            self.fh = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise OSError(f"{path}: cannot open alert log: {exc.strerror or exc}") from None

    def write(self, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        self.fh.write("".join(json.dumps(a, separators=(", ", ": ")) + "\n" for a in alerts))
        self.fh.flush()

    def write_event(self, record: dict[str, Any]) -> None:
        self.write([record])

    def reopen(self) -> str | None:
        """After logrotate renamed the file: continue in a new file at the same path.

        If the new file cannot be opened (a directory the sensor's user may not write), the
        old handle stays in use and the reason is returned: alerts keep going somewhere."""
        try:
            fh = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            return f"{self.path}: cannot reopen alert log: {exc.strerror or exc}; still writing to the old file"
        self.fh.close()
        self.fh = fh
        return None

    def close(self) -> None:
        self.fh.close()
