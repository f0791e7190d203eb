"""Lookups shared by the pages and the JSON API."""

from __future__ import annotations

from typing import Any

from flask import abort, g


def alert_or_404(alert_id: int) -> dict[str, Any]:
    """The stored alert, or a 404 for the page or API that asked."""
    alert = g.store.alert(alert_id)
    if alert is None:
        abort(404)
    return alert
