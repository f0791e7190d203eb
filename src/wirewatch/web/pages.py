"""HTML pages. Templates autoescape everything; scripts add packet-derived text with
textContent only, so nothing taken from a packet can become markup or script."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, send_from_directory, url_for

from ..alert_pcap import CaptureChanged, PacketsError, alert_pcap
from ..detect import registry
from ..store.queries import QueryError
from .auth import csrf_token, login_required
from .lookup import alert_or_404
from .params import address

pages = Blueprint("pages", __name__)


@pages.app_context_processor
def inject() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "types": sorted(registry.names()), "chartjs": current_app.config.get("VENDOR") is not None}


@pages.route("/")
@login_required
def overview() -> Any:
    return render_template("overview.html", sensors=g.store.sensor_names())


@pages.route("/alerts")
@login_required
def alerts() -> Any:
    return render_template("alerts.html", sensors=g.store.sensor_names())


@pages.route("/sensors")
@login_required
def sensors() -> Any:
    return render_template("sensors.html")


@pages.route("/incidents")
@login_required
def incidents() -> Any:
    return render_template("incidents.html", sensors=g.store.sensor_names())


@pages.route("/incidents/<path:src_ip>")
@login_required
def incident(src_ip: str) -> Any:
    try:
        src = address("src", src_ip)
    except QueryError as exc:
        abort(400, str(exc))
    return render_template("incident.html", src_ip=src)


@pages.route("/alerts/<int:alert_id>")
@login_required
def detail(alert_id: int) -> Any:
    alert = alert_or_404(alert_id)
    evidence = alert["record"].get("evidence", {})
    original = g.store.updated_alert(alert_id, alert["record"]) if "update_of" in alert["record"] else None
    return render_template("detail.html", a=alert, evidence=evidence, original=original,
                           pretty=json.dumps(alert["record"], indent=2))


@pages.route("/alerts/<int:alert_id>/updated")
@login_required
def updated(alert_id: int) -> Any:
    """An update's link (the alert list's "update of"): to the alert it updates, or 404 naming why."""
    alert = alert_or_404(alert_id)
    if "update_of" not in alert["record"]:
        abort(404, f"alert {alert_id} is not an update of another alert")
    original = g.store.updated_alert(alert_id, alert["record"])
    if original is None:
        abort(404, f"the alert that alert {alert_id} updates is no longer in the store")
    return redirect(url_for("pages.detail", alert_id=original))


@pages.route("/alerts/<int:alert_id>/pcap")
@login_required
def pcap(alert_id: int) -> Any:
    """The alert's packets as a pcap download: frames of the capture file it was read from,
    or the pcap a live sensor wrote when it fired (404 naming why when neither is there; 409
    when the file at the alert's path was replaced or changed since)."""
    return pcap_response(alert_id)


def pcap_response(alert_id: int) -> Any:
    alert = alert_or_404(alert_id)
    try:
        data = alert_pcap(alert["record"], current_app.config.get("PCAP_DIR", "var/pcap"))
    except CaptureChanged as exc:  # the file is there, but another one: 409, naming why
        abort(409, str(exc))
    except PacketsError as exc:
        abort(404, str(exc))
    return Response(data, mimetype="application/vnd.tcpdump.pcap",
                    headers={"Content-Disposition": f"attachment; filename=wirewatch-alert-{alert_id}.pcap"})


@pages.route("/tune")
@login_required
def tune() -> Any:
    return render_template("tune.html")


@pages.route("/mutes")
@login_required
def mutes() -> Any:
    return render_template("mutes.html", mutes=g.store.mutes())


@pages.route("/favicon.ico")
def favicon() -> Any:
    """What browsers ask for on every page whatever the page links (a 404 each time before):
    the SVG icon of static/, which the templates link too. No login, as static/."""
    return send_from_directory(current_app.static_folder or "", "favicon.svg", mimetype="image/svg+xml")


@pages.route("/vendor/chart.umd.js")
@login_required
def chartjs() -> Any:
    vendor = current_app.config.get("VENDOR")
    if vendor is None:
        abort(404)
    return send_from_directory(vendor / "chart.js" / "dist", "chart.umd.js", mimetype="text/javascript")
