"""Declaring a setting once: its default, its help text and its bounds; and Frozen, the base of
wirewatch's frozen dataclasses (the settings sections among them)."""

from __future__ import annotations

import dataclasses
import reprlib
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


class Frozen:
    """The ==, hash and repr that @dataclass(frozen=True) generates, written once for every
    frozen dataclass of wirewatch, each declared `@dataclass(frozen=True, eq=False, repr=False)`
    on this base. dataclass compiles every method it generates (on Python 3.11 each is an
    exec of generated source, ~0.1-0.2 ms); one settings section costs three compiles then, not
    six, and `wirewatch read` imports some twenty of them."""

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return _values(self, "compare") == _values(other, "compare")
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_values(self, "hash"))

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in _fields(self) if f.repr)
        return f"{type(self).__qualname__}({shown})"


def _fields(obj: Any) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(obj)


def _values(obj: Any, kind: str) -> tuple[Any, ...]:
    """The values of the fields dataclass's own __eq__ ("compare") or __hash__ ("hash": a
    field's hash flag, else its compare flag) would take, in order."""
    return tuple(getattr(obj, f.name) for f in _fields(obj)
                 if (f.compare if kind == "compare" or f.hash is None else f.hash))
