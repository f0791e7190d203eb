"""Validation of every value the API accepts: a bad one is a QueryError naming the field
(the API answers 400 with it), never an exception from deep in the store (a 500).

Bounds are the store's: integers fit a signed 64-bit column, ports fit 16 bits, times and
durations are finite and within a sane range, text is short enough to search quickly.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..detect import registry
from ..store.queries import AlertFilter, QueryError

INT64_MAX = 2**63 - 1
MAX_Q = 200  # characters of free-text search
MAX_TEXT = 100  # a type, an address or CIDR, a sensor name
MAX_REASON = 200
MAX_IDS = 1000  # alert ids per acknowledge request
MAX_MUTE_HOURS = 24 * 366.0
MAX_EPOCH = 1e11  # ~ year 5138: anything later is a typo, and still a finite float


def integer(name: str, raw: Any, lo: int, hi: int) -> int:
    """An int from JSON (not a bool, not a float) or from query text, within [lo, hi]."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise QueryError(f"{name}: expected an integer, got {_show(raw)}")
    if isinstance(raw, str):
        text = raw.strip()
        if not (text.isascii() and text.lstrip("+-").isdigit()) or len(text) > 20:
            raise QueryError(f"{name}: not a number: {_show(raw)}")
        raw = int(text)
    if not lo <= raw <= hi:
        raise QueryError(f"{name}: must be between {lo} and {hi}, got {_show(raw)}")
    return raw


def number(name: str, raw: Any, lo: float, hi: float) -> float:
    """A finite number within [lo, hi] ("nan", "inf" and 1e308 are refused)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise QueryError(f"{name}: expected a number, got {_show(raw)}")
    if isinstance(raw, str) and not raw.isascii():  # float() reads other scripts' digits: '٣' was 3
        raise QueryError(f"{name}: not a number: {_show(raw)}")
    try:
        value = float(raw.strip()) if isinstance(raw, str) and len(raw) <= 40 else float(raw)
    except (ValueError, OverflowError):
        raise QueryError(f"{name}: not a number: {_show(raw)}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise QueryError(f"{name}: must be a finite number between {lo:g} and {hi:g}, got {_show(raw)}")
    return value


def text(name: str, raw: Any, limit: int) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise QueryError(f"{name}: expected text, got {_show(raw)}")
    if len(raw) > limit:
        raise QueryError(f"{name}: longer than {limit} characters ({len(raw)})")
    if any(ord(c) < 0x20 for c in raw):
        raise QueryError(f"{name}: control characters are not allowed")
    return raw.strip()


def address(name: str, raw: Any) -> str:
    """One IPv4 or IPv6 address, in its normal spelling."""
    value = no_zone(name, text(name, raw, MAX_TEXT))
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise QueryError(f"{name}: not an IP address: {_show(raw)}") from None


def no_zone(name: str, value: str) -> str:
    """An address or prefix without an IPv6 zone (fe80::1%eth0): ipaddress keeps the zone, so
    the filter matched nothing, and no stored address has one."""
    if ":" in value.split("%", 1)[0] and "%" in value:
        raise QueryError(f"{name}: an IPv6 zone ({value[value.index('%'):][:20]}) has no meaning here: {_show(value)}")
    return value


def alert_type(raw: Any) -> str:
    """A detector's name (the alert types), or empty for any."""
    value = text("type", raw, MAX_TEXT)
    known = registry.names()
    if value and value not in known:
        raise QueryError(f"type: no alert type {_show(value)} (one of {', '.join(sorted(known))})")
    return value


def boolean(name: str, raw: Any) -> bool | None:
    """JSON true/false, or query text 1/true/yes and 0/false/no; empty = not given."""
    if isinstance(raw, bool) or raw is None:
        return raw
    if isinstance(raw, str):
        t = raw.strip().lower()
        if t == "":
            return None
        if t in ("1", "true", "yes"):
            return True
        if t in ("0", "false", "no"):
            return False
    raise QueryError(f"{name}: expected true or false, got {_show(raw)}")


def alert_filter(args: Mapping[str, Any]) -> AlertFilter:
    """The alert list's filters from query arguments."""
    # (a plain dict: a query string's MultiDict answers each of the 14 absent names by raising
    # and catching an HTTP exception, a tenth of a small request's CPU)
    args = {name: args[name] for name in args}

    def opt(name: str, parse: Any, *bounds: Any) -> Any:
        raw = args.get(name)
        return None if raw is None or str(raw).strip() == "" else parse(name, raw, *bounds)

    limit = opt("limit", integer, 1, INT64_MAX)
    return AlertFilter(
        type=alert_type(args.get("type")), severity=opt("severity", integer, 0, 255),
        src=no_zone("src", text("src", args.get("src"), MAX_TEXT)),
        dest=no_zone("dest", text("dest", args.get("dest"), MAX_TEXT)),
        port=opt("port", integer, 0, 65535), since=opt("since", number, 0, MAX_EPOCH),
        until=opt("until", number, 0, MAX_EPOCH), q=text("q", args.get("q"), MAX_Q),
        acknowledged=boolean("acknowledged", args.get("acknowledged")), before=opt("before", integer, 0, INT64_MAX),
        after=opt("after", integer, 0, INT64_MAX), limit=min(500, limit or 50),
        sensor=text("sensor", args.get("sensor"), MAX_TEXT), country=country_code(args.get("country")),
        asn=text("asn", args.get("asn"), MAX_TEXT))


def country_code(raw: Any) -> str:
    code = text("country", raw, MAX_TEXT)
    if code and not (len(code) == 2 and code.isascii() and code.isalpha()):
        raise QueryError(f"country: expected a two-letter country code such as US, got {_show(code)}")
    return code.upper()


def sensor_arg(args: Mapping[str, Any]) -> str:
    return text("sensor", args.get("sensor"), MAX_TEXT)


def alert_ids(raw: Any) -> list[int]:
    if not isinstance(raw, list):
        raise QueryError(f"ids: expected a list of alert ids, got {_show(raw)}")
    if len(raw) > MAX_IDS:
        raise QueryError(f"ids: at most {MAX_IDS} per request, got {len(raw)}")
    return [integer("ids", i, 1, INT64_MAX) for i in raw]


def mute_request(body: Any, known_types: Iterable[str]) -> dict[str, Any]:
    """A new mute from a JSON object or a form: type, cidr, dest_port, hours, reason."""
    if not hasattr(body, "get"):
        raise QueryError(f"body: expected a JSON object, got {_show(body)}")
    alert_type = text("type", body.get("type"), MAX_TEXT)
    known = set(known_types)
    if alert_type != "*" and alert_type not in known:
        raise QueryError(f"type: unknown detector {alert_type!r} (one of {', '.join(sorted(known))}, or '*')")
    port = body.get("dest_port")
    return {
        "alert_type": alert_type,
        "cidr": text("cidr", body.get("cidr"), MAX_TEXT),
        "dest_port": None if port in (None, "") else integer("dest_port", port, 0, 65535),
        "hours": number("hours", body.get("hours", 1), 1 / 60, MAX_MUTE_HOURS),
        "reason": text("reason", body.get("reason", ""), MAX_REASON),
    }


def _show(raw: Any) -> str:
    """A bad value, short enough for one line."""
    shown = repr(raw)
    return shown if len(shown) <= 40 else shown[:37] + "..."
