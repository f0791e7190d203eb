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
  function fmtUptime(s) {
    if (s === undefined || s === null) return "–";
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h + "h " + m + "m";
  }
  const scope = WW.sensorScope(() => refresh());
  async function refresh() {
    const q = scope();
    const o = await WW.get("/api/overview?" + q);
    const h = o.health || {};
    const values = {sensor: o.sensor || h.sensor || "all", interface: h.interface, uptime_s: fmtUptime(h.uptime_s), packets: h.packets,
                    kernel_drops: h.kernel_drops, decode_errors: h.decode_errors, total_alerts: o.total_alerts};
    document.querySelectorAll("#health [data-k]").forEach(function (p) {
      const v = values[p.dataset.k]; p.textContent = (v === undefined || v === null) ? "–" : String(v);
    });
    set(chart("chart-pps", "line", {label: "packets/s", bg: "#4e79a7"}),
        o.packets_per_s.map(p => WW.time(p.t).slice(11)), o.packets_per_s.map(p => Math.round(p.pps)));
    set(chart("chart-apm", "line", {label: "alerts/min", bg: "#e15759"}),
        o.alerts_per_minute.map(p => WW.time(p.t).slice(11, 16)), o.alerts_per_minute.map(p => p.alerts));
    const types = Object.keys(o.alerts_by_type);
    set(chart("chart-types", "doughnut", {label: "alerts"}), types, types.map(t => o.alerts_by_type[t]));
    set(chart("chart-sources", "bar", {label: "alerts", indexAxis: "y"}),
        o.top_sources.map(s => WW.withOwner(s.src_ip, s.owner)), o.top_sources.map(s => s.count));
    set(chart("chart-talkers", "bar", {label: "packets", indexAxis: "y", bg: "#59a14f"}),
        o.top_talkers.map(s => s.src_ip), o.top_talkers.map(s => s.packets));
    const latest = await WW.get("/api/alerts?limit=10" + (q ? "&" + q : ""));
    const body = document.querySelector("#latest tbody");
    body.replaceChildren(...latest.alerts.map(a => WW.alertRow(a, false)));
    document.body.dataset.loaded = "1";
  }
  refresh();
  setInterval(refresh, 3000);
})();
