"""Lookups shared by the pages and the JSON API."""

from __future__ import annotations

from typing import Any

from flask import abort, g

from ..store.queries import QueryError

INT64_MAX = 2**63 - 1


def checked_id(value: int, name: str) -> int:
    """A row id from the URL: Flask's int converter takes any length, the store 64 bits."""
    if not 0 < value <= INT64_MAX:
        raise QueryError(f"{name}: must be between 1 and {INT64_MAX}")
    return value


def alert_or_404(alert_id: int) -> dict[str, Any]:
    """The stored alert, or a 404 for the page or API that asked."""
    alert = g.store.alert(alert_id) if 0 < alert_id <= INT64_MAX else None
    if alert is None:
        abort(404)
    return alert
