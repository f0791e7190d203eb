"""Alert sinks: each takes a list of alert records per batch."""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    name: str

    def write(self, alerts: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...
