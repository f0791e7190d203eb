"""JSON API under /api/ (everything the pages show) and /metrics for Prometheus."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from ..detect import registry
from ..schema import TS_FORMAT
from ..store.queries import QUIET_AFTER_S, QueryError
from ..store.spool import StoreRefused
from .auth import login_required
from .lookup import INT64_MAX, alert_or_404, checked_id
from .params import address, alert_filter, alert_ids, boolean, integer, mute_request, sensor_arg

api = Blueprint("api", __name__)


@api.errorhandler(QueryError)
def bad_query(exc: QueryError) -> Any:
    return jsonify(error=str(exc)), 400


@api.errorhandler(StoreRefused)
def store_ahead(exc: StoreRefused) -> Any:
    """A triage write into a store a newer wirewatch migrated since the dashboard started: refused."""
    return jsonify(error=str(exc)), 409


@api.route("/api/alerts")
@login_required
def alerts() -> Any:
    f = alert_filter(request.args)
    # the newest id first, once: a bounded read searches below it, and an empty page's client polls for
    # alerts after it (read after the page, it could pass over a match written in between)
    latest = g.store.latest_id()
    rows, bounded = g.store.alerts_page(f, latest)
    extra: dict[str, Any] = {"search": g.store.search_status(latest)} if f.q else {}  # what a text search covered
    if bounded:  # a partial answer: every match from searched_from up, older alerts not searched yet
        extra["bounded"] = bounded
        next_before = bounded["searched_from"] if len(rows) < f.limit else rows[-1]["id"]
    else:
        next_before = rows[-1]["id"] if len(rows) == f.limit else None
    return jsonify(alerts=rows, next_before=next_before, latest_id=latest, **extra)


@api.route("/api/alerts/<int:alert_id>")
@login_required
def alert(alert_id: int) -> Any:
    return jsonify(alert_or_404(alert_id))


@api.route("/api/alerts/<alert_id>/pcap")
@login_required
def alert_pcap(alert_id: str) -> Any:
    """The alert's packets as a pcap (as the page's download): 400 for an id that is not one,
    404 naming why for an alert without packets that can still be read."""
    from .pages import pcap_response

    if not alert_id.isdigit():
        raise QueryError(f"alert id: {alert_id!r} is not a whole number")
    return pcap_response(checked_id(int(alert_id), "alert id"))


@api.route("/api/overview")
@login_required
def overview() -> Any:
    sensor = sensor_arg(request.args)
    return jsonify(g.store.overview(sensor=sensor) | {"near_misses": g.store.near_misses(sensor)})


@api.route("/api/tune")
@login_required
def tune_runs() -> Any:
    limit = request.args.get("limit")
    n = 50 if not limit else integer("limit", limit, 1, 500)
    return jsonify(runs=g.store.tune_runs(n))


@api.route("/api/tune/<path:run_id>")
@login_required
def tune_run(run_id: str) -> Any:
    n = integer("id", run_id, 1, INT64_MAX)
    run = g.store.tune_run(n)
    if run is None:
        return jsonify(error=f"id: no tune run {n}"), 404
    return jsonify(run)


@api.route("/api/sensors")
@login_required
def sensors() -> Any:
    return jsonify(sensors=g.store.sensors(), quiet_after_s=QUIET_AFTER_S)


@api.route("/api/incidents")
@login_required
def incidents() -> Any:
    limit = request.args.get("limit")
    n = 50 if not limit else integer("limit", limit, 1, 500)
    return jsonify(incidents=g.store.incidents(sensor=sensor_arg(request.args), limit=n))


@api.route("/api/incidents/<path:src_ip>")
@login_required
def incident(src_ip: str) -> Any:
    src = address("src", src_ip)
    return jsonify(src_ip=src, alerts=g.store.incident(src))


@api.route("/api/alerts/ack", methods=["POST"])
@login_required
def acknowledge() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise QueryError("body: expected a JSON object with ids")
    ids = alert_ids(body.get("ids", []))
    value = boolean("acknowledged", body.get("acknowledged", True))
    triage = current_app.extensions["triage"]()
    try:
        n = triage.acknowledge(ids, value is not False)
    finally:
        triage.close()
    return jsonify(updated=n)


@api.route("/api/mutes", methods=["GET", "POST"])
@login_required
def mutes() -> Any:
    if request.method == "GET":
        return jsonify(mutes=g.store.mutes())
    body = request.get_json(silent=True) if request.is_json else request.form
    m = mute_request(body, registry.names())
    triage = current_app.extensions["triage"]()
    try:
        mid = triage.mute(m["alert_type"], m["cidr"], time.time() + m["hours"] * 3600, m["dest_port"], m["reason"])
    finally:
        triage.close()
    return jsonify(id=mid), 201


@api.route("/api/mutes/<int:mute_id>/end", methods=["POST"])
@login_required
def unmute(mute_id: int) -> Any:
    checked_id(mute_id, "mute id")
    triage = current_app.extensions["triage"]()
    try:
        n = triage.unmute(mute_id)
    finally:
        triage.close()
    return jsonify(updated=n)


@api.route("/metrics")
@login_required
def metrics() -> Any:
    lines = ["# HELP wirewatch_alerts_total Alerts stored, by detector.", "# TYPE wirewatch_alerts_total counter"]
    for t, n in sorted(g.store.counts_by_type().items()):
        lines.append(f'wirewatch_alerts_total{{type="{_label(t)}"}} {n}')
    s = g.store.latest_stats()
    if s:
        st = s["stats"]
        for name, value, kind, text in (
            ("packets_total", st["decoder"]["pkts"], "counter", "Packets analysed."),
            ("bytes_total", st["decoder"]["bytes"], "counter", "Bytes analysed (wire length)."),
            ("kernel_packets_total", st["capture"]["kernel_packets"], "counter", "Packets the kernel captured."),
            ("kernel_drops_total", st["capture"]["kernel_drops"], "counter", "Packets the kernel dropped."),
            ("decode_errors_total", st["decoder"]["invalid"], "counter", "Frames that could not be decoded."),
            ("uptime_seconds", st.get("uptime", 0), "gauge", "Sensor uptime."),
            ("compiled_hot_path", int(st.get("compiled_hot_path", False)), "gauge",
             "1 when the sensor runs the compiled decoder and kernels, 0 on the slower numpy reference."),
        ):
            lines += [f"# HELP wirewatch_{name} {text}", f"# TYPE wirewatch_{name} {kind}", f"wirewatch_{name} {value}"]
        lines += ["# HELP wirewatch_detector_state Detector state sizes and evictions.",
                  "# TYPE wirewatch_detector_state gauge"]
        for k, v in sorted(st.get("state", {}).items()):
            lines.append(f'wirewatch_detector_state{{key="{_label(k)}"}} {v}')
        lines += _blacklist_metrics(st.get("blacklists", []))
        lines += _near_miss_metrics(g.store.near_misses())
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


def _blacklist_metrics(lists: list[dict[str, Any]]) -> list[str]:
    """Per blocklist (file or feed URL): entries, last fetch time, and its last error as a label."""
    out = ["# HELP wirewatch_blacklist_entries Entries in each blocklist.", "# TYPE wirewatch_blacklist_entries gauge",
           "# HELP wirewatch_blacklist_last_fetch_timestamp_seconds When each feed last answered.",
           "# TYPE wirewatch_blacklist_last_fetch_timestamp_seconds gauge",
           "# HELP wirewatch_blacklist_error 1 when the feed's last fetch failed (the reason is the label).",
           "# TYPE wirewatch_blacklist_error gauge"]
    for bl in lists:
        name = _label(str(bl.get("list", "")))
        out.append(f'wirewatch_blacklist_entries{{list="{name}"}} {int(bl.get("entries", 0))}')
        if bl.get("last_fetch"):
            when = dt.datetime.strptime(bl["last_fetch"], TS_FORMAT).timestamp()
            out.append(f'wirewatch_blacklist_last_fetch_timestamp_seconds{{list="{name}"}} {when:.3f}')
        if "last_fetch" in bl or "last_error" in bl:
            error = f',error="{_label(bl["last_error"])}"' if bl.get("last_error") else ""
            out.append(f'wirewatch_blacklist_error{{list="{name}"{error}}} {1 if error else 0}')
    return out


def _near_miss_metrics(sensors: list[dict[str, Any]]) -> list[str]:
    """Per sensor and detector, the highest fraction of its threshold one of its keys has
    reached in that sensor's latest stats record (0 when none): one series per sensor."""
    out = ["# HELP wirewatch_near_miss_fraction Highest figure of a detector's keys as a fraction of its threshold "
           "(near misses: 0.5 to below 1; 0 when none), per sensor.", "# TYPE wirewatch_near_miss_fraction gauge"]
    for entry in sensors:
        sensor = _label(str(entry["sensor"]))
        best = dict.fromkeys(registry.names(), 0.0)
        for m in entry["near_misses"]:
            best[m["detector"]] = max(best.get(m["detector"], 0.0), float(m["fraction"]))
        out += [f'wirewatch_near_miss_fraction{{detector="{_label(d)}",sensor="{sensor}"}} {v:g}'
                for d, v in best.items()]
    return out


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
