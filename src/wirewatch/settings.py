"""Declaring a setting once: its default, its help text and its bounds."""

from __future__ import annotations

import dataclasses
from typing import Any


def setting(default: Any, help: str, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A dataclass field carrying help text and bounds for config validation and `wirewatch config`."""
    meta = {"help": help, "min": minimum, "max": maximum}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
