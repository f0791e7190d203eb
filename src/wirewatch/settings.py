"""Declaring a setting once: its default, its help text and its bounds."""

from __future__ import annotations

import dataclasses
from typing import Any

MAX_CAP = 1 << 24  # entries: the ceiling of every state cap (64x the largest default; ~1 GB at worst)


def cap(default: int, help: str) -> Any:
    """A cap on entries of state keyed by something the traffic chooses: at least 16, at most MAX_CAP
    (a typo such as 10**9 would otherwise allocate gigabytes at start-up)."""
    return setting(default, help, 16, MAX_CAP)


MAX_SECONDS = 31_536_000  # a year: the longest window, cooldown, timeout or interval (a window of 1e18 s put
# its start before year 1, and syn_flood's evidence failed to name it; no detection needs more)


def seconds(default: float, help: str, minimum: float) -> Any:
    """A duration in seconds: at least minimum, at most MAX_SECONDS."""
    return setting(default, help, minimum, MAX_SECONDS)


def setting(default: Any, help: str, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A dataclass field carrying help text and bounds for config validation and `wirewatch config`."""
    meta = {"help": help, "min": minimum, "max": maximum}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
