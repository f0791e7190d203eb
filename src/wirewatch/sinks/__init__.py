"""Alert sinks: what the engine and the sensor call on each (Sink), with the optional parts'
defaults in SinkBase so no caller has to probe with hasattr."""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    name: str
    keeps_muted: bool  # also receives alerts a mute marked (the store keeps and counts them)

    def write(self, alerts: list[dict[str, Any]]) -> None:
        """One batch of alert records."""

    def close(self) -> None: ...

    def filter(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Before any sink writes: mark muted alerts (`muted`); the store's mutes."""

    def write_event(self, record: dict[str, Any]) -> None:
        """A non-alert event (EVE stats)."""

    def paths(self) -> list[str]:
        """Files it writes, handed to the unprivileged user before the sensor drops root."""

    def stats(self) -> dict[str, int]:
        """Delivery counters (stored, spooled...) for the summary and /metrics."""

    def halted(self) -> str:
        """Why this sink takes no more records ('' while it does): the command then stops, exit 2."""


class SinkBase:
    """Defaults for the optional parts of Sink: mutes nothing, keeps no events, writes no
    files of its own, counts nothing, never halts."""

    name = "sink"
    keeps_muted = False

    def filter(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return alerts

    def write_event(self, record: dict[str, Any]) -> None:
        return None

    def paths(self) -> list[str]:
        return []

    def stats(self) -> dict[str, int]:
        return {}

    def halted(self) -> str:
        return ""
