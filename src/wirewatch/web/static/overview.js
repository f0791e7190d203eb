// Overview: health cards, live charts (Chart.js draws on canvas: labels are never markup).
"use strict";
(function () {
  const charts = {};
  const palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
  function chart(id, type, opts) {
    if (typeof Chart === "undefined") return null;
    if (!charts[id]) {
      charts[id] = new Chart(document.getElementById(id), {type: type,
        data: {labels: [], datasets: [{label: opts.label, data: [], backgroundColor: opts.bg || palette, borderColor: "#4e79a7", fill: false, tension: 0.2}]},
        options: {animation: false, responsive: true, maintainAspectRatio: false, indexAxis: opts.indexAxis || "x", plugins: {legend: {display: type === "doughnut"}},
                  scales: type === "doughnut" ? {} : {y: {beginAtZero: true}}}});
    }
    return charts[id];
  }
  function set(c, labels, values) {
    if (!c) return;
    c.data.labels = labels; c.data.datasets[0].data = values; c.update();
  }
  // The store lists only the minutes that had alerts: every minute of the hour up to the newest one,
  // 0 where none came, so a quiet stretch is a flat line at 0 and not two busy minutes joined up.
  function perMinute(rows) {
    if (!rows.length) return [];
    const count = new Map(rows.map(r => [r.t, r.alerts]));
    const last = rows[rows.length - 1].t;
    const out = [];
    for (let t = last - 59 * 60; t <= last; t += 60) out.push({t: t, alerts: count.get(t) || 0});
    return out;
  }
  function hoursMinutes(s) {
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  }
  // a sensor's uptime; a `wirewatch read` has none (its stats event is offline): the card says
  // so in its heading and shows how long the read took
  function fmtUptime(h) {
    const s = h.uptime_s;
    const card = document.querySelector("#health [data-k=uptime_s]").parentElement;
    card.querySelector("h3").textContent = h.offline ? "Offline read" : "Uptime";
    card.title = h.offline ? "a capture file analysed by wirewatch read: how long the read took" : "";
    if (s === undefined || s === null) return "–";
    if (!h.offline) return hoursMinutes(s);
    return s < 1 ? "< 1 s" : s < 60 ? s + " s" : hoursMinutes(s);
  }
  // near misses per sensor: "10.0.0.9: 14 of 20 ports in 10 s" with a bar (all text via textContent)
  function nearMisses(sensors) {
    const box = document.getElementById("near-list");
    box.replaceChildren(...sensors.map(function (s) {
      const part = WW.el("div", null, "near-sensor");
      part.dataset.sensor = s.sensor;
      part.appendChild(WW.el("h3", (s.sensor || "(unnamed sensor)") + " — stats event of " + WW.time(s.updated) + " UTC"));
      if (!s.near_misses.length) {
        part.appendChild(WW.el("p", "no source at 50 % of a threshold or more", "muted"));
        return part;
      }
      const table = WW.el("table", null, "alerts"), body = document.createElement("tbody");
      s.near_misses.forEach(function (n) {
        const tr = document.createElement("tr"), bar = WW.el("td", null, "bar"), meter = document.createElement("meter");
        meter.min = 0; meter.max = 1; meter.low = 0.75; meter.high = 0.9; meter.optimum = 0; meter.value = n.fraction;
        bar.appendChild(meter);
        bar.appendChild(WW.el("span", " " + Math.floor(n.fraction * 100) + " %"));
        tr.appendChild(WW.el("td", n.detector));
        tr.appendChild(WW.el("td", n.text, "near-text"));
        tr.appendChild(bar);
        body.appendChild(tr);
      });
      table.appendChild(body);
      part.appendChild(table);
      return part;
    }));
    if (!sensors.length) box.appendChild(WW.el("p", "no stats event stored yet", "muted"));
  }
  const scope = WW.sensorScope(() => refresh());
  async function refresh() {
    const q = scope();
    const o = await WW.get("/api/overview?" + q);
    const h = o.health || {};
    const values = {sensor: o.sensor || h.sensor || "all", interface: h.interface, uptime_s: fmtUptime(h), packets: h.packets,
                    kernel_drops: h.kernel_drops, decode_errors: h.decode_errors, total_alerts: o.total_alerts};
    document.querySelectorAll("#health [data-k]").forEach(function (p) {
      const v = values[p.dataset.k]; p.textContent = (v === undefined || v === null) ? "–" : String(v);
    });
    set(chart("chart-pps", "line", {label: "packets/s", bg: "#4e79a7"}),
        o.packets_per_s.map(p => WW.time(p.t).slice(11)), o.packets_per_s.map(p => Math.round(p.pps)));
    const apm = perMinute(o.alerts_per_minute);
    set(chart("chart-apm", "line", {label: "alerts/min", bg: "#e15759"}),
        apm.map(p => WW.time(p.t).slice(11, 16)), apm.map(p => p.alerts));
    const types = Object.keys(o.alerts_by_type);
    set(chart("chart-types", "doughnut", {label: "alerts"}), types, types.map(t => o.alerts_by_type[t]));
    set(chart("chart-sources", "bar", {label: "alerts", indexAxis: "y"}),
        o.top_sources.map(s => WW.withOwner(s.src_ip, s.owner)), o.top_sources.map(s => s.count));
    set(chart("chart-talkers", "bar", {label: "packets", indexAxis: "y", bg: "#59a14f"}),
        o.top_talkers.map(s => s.src_ip), o.top_talkers.map(s => s.packets));
    nearMisses(o.near_misses || []);
    const latest = await WW.get("/api/alerts?limit=10" + (q ? "&" + q : ""));
    const body = document.querySelector("#latest tbody");
    body.replaceChildren(...latest.alerts.map(a => WW.alertRow(a, false)));
    document.body.dataset.loaded = "1";
  }
  refresh();
  setInterval(refresh, 3000);
})();
