// Tune: a saved `wirewatch tune` run, alerts against threshold per threshold with the value in effect
// marked. Chart.js draws on canvas; sources and capture names are set with textContent only.
"use strict";
(function () {
  const TIP_SOURCES = 8;  // sources named in a tooltip (a click lists them all)
  const LISTED = 500;  // sources listed under a chart at most
  const sel = document.getElementById("run");
  const info = document.getElementById("run-info");
  const error = document.getElementById("tune-error");
  const charts = [];

  // the value in effect: a dashed vertical line across the chart (options.plugins.inEffect.value)
  const inEffect = {
    id: "inEffect",
    afterDatasetsDraw(chart, args, opts) {
      const x = chart.scales.x.getPixelForValue(opts.value), a = chart.chartArea, ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = "#d62728"; ctx.lineWidth = 1.5; ctx.setLineDash([6, 4]);
      ctx.beginPath(); ctx.moveTo(x, a.top); ctx.lineTo(x, a.bottom); ctx.stroke();
      ctx.restore();
    },
  };

  function num(v) { return typeof v === "number" ? v.toLocaleString("en-US", {maximumFractionDigits: 3}) : String(v); }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function showSources(box, row) {
    const title = WW.el("p", "Sources at threshold " + num(row.value) + " (" + plural(row.alerts, "alert") + ", " +
                        plural(row.sources.length, "source") + ")" + (row.current ? ": the value in effect" : ""));
    const list = WW.el("div", null, "chips");
    row.sources.slice(0, LISTED).forEach(s => list.appendChild(WW.el("span", s, "chip")));
    if (row.sources.length > LISTED) list.appendChild(WW.el("span", "+" + (row.sources.length - LISTED) + " more", "muted"));
    if (!row.sources.length) list.appendChild(WW.el("span", "none", "muted"));
    box.dataset.value = String(row.value);
    box.replaceChildren(title, list);
  }

  function panel(t) {
    const id = t.detector + "." + t.key;
    const div = WW.el("div", null, "panel");
    div.dataset.threshold = id;
    div.appendChild(WW.el("h2", id));
    div.appendChild(WW.el("p", "compared with evidence." + t.figure + "; in effect: " + num(t.current), "muted"));
    const holder = WW.el("div", null, "chart"), canvas = document.createElement("canvas");
    canvas.id = "tune-" + t.detector + "-" + t.key;
    holder.appendChild(canvas);
    div.appendChild(holder);
    div.appendChild(WW.el("p", t.approximate ? "approximate: " + t.approximate
                                             : "exact: this threshold only decides which keys are reported", "approx"));
    if (t.capped) div.appendChild(WW.el("p", "capped: " + t.capped, "capped"));  // counts marked >= are lower bounds
    const box = WW.el("div", null, "sources");
    div.appendChild(box);
    const rows = t.rows, current = rows.find(r => r.current) || rows[0];
    showSources(box, current);
    if (typeof Chart === "undefined" || !current) return div;
    const byValue = new Map(rows.map(r => [r.value, r]));
    const tip = function (items) {
      const row = byValue.get(items[0].parsed.x);
      if (!row || !row.sources.length) return [];
      const more = row.sources.length - TIP_SOURCES;
      return ["sources:"].concat(row.sources.slice(0, TIP_SOURCES), more > 0 ? ["+" + more + " more (click)"] : []);
    };
    charts.push(new Chart(canvas, {
      type: "line",
      data: {datasets: [
        {label: "alerts", data: rows.map(r => ({x: r.value, y: r.alerts})), stepped: "after", borderColor: "#4e79a7",
         backgroundColor: "#4e79a7", pointRadius: 3, pointHoverRadius: 6},
        {label: "in effect: " + num(t.current) + " (" + plural(current.alerts, "alert") + ")",
         data: [{x: current.value, y: current.alerts}], showLine: false, pointStyle: "rectRot", pointRadius: 8,
         pointHoverRadius: 10, borderColor: "#d62728", backgroundColor: "#d62728"},
      ]},
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: {mode: "nearest", axis: "x", intersect: false},
        scales: {x: {type: "linear", title: {display: true, text: "threshold (" + t.figure + ")"}},
                 y: {beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: "alerts"}}},
        plugins: {
          inEffect: {value: t.current},
          legend: {display: true, labels: {usePointStyle: true}},
          tooltip: {callbacks: {title: items => "threshold " + num(items[0].parsed.x),
                                label: item => ((byValue.get(item.parsed.x) || {}).at_least ? "at least " : "") +
                                               plural(item.parsed.y, "alert") + (item.datasetIndex === 1 ? " (in effect)" : ""),
                                afterBody: tip}},
        },
        onClick: function (evt, elements, chart) {
          const near = chart.getElementsAtEventForMode(evt, "nearest", {axis: "x", intersect: false}, false);
          if (!near.length) return;
          const p = chart.data.datasets[near[0].datasetIndex].data[near[0].index];
          const row = byValue.get(p.x);
          if (row) showSources(box, row);
        },
      },
      plugins: [inEffect],
    }));
    return div;
  }

  function untuned(doc) {
    const section = document.getElementById("untuned");
    const rows = doc.untuned || [];
    section.hidden = rows.length === 0;
    section.querySelector("tbody").replaceChildren(...rows.map(function (u) {
      const tr = document.createElement("tr");
      tr.appendChild(WW.el("td", u.detector));
      tr.appendChild(WW.el("td", (u.at_least ? "at least " : "") + u.alerts));
      tr.appendChild(WW.el("td", u.sources.slice(0, 20).join(", ") + (u.sources.length > 20 ? " (+" + (u.sources.length - 20) + ")" : "")));
      return tr;
    }));
  }

  function baseline(doc) {
    const section = document.getElementById("baseline");
    const b = doc.baseline;
    section.hidden = !b;
    if (!b) return;
    document.getElementById("baseline-info").textContent = "Traffic called normal: " +
      b.captures.map(c => c.split("/").pop()).join(", ") + " (" + num(b.packets) + " packets), margin x" + num(b.margin) + ".";
    section.querySelector("tbody").replaceChildren(...b.suggestions.map(function (s) {
      const tr = document.createElement("tr");
      tr.appendChild(WW.el("td", s.detector + "." + s.key));
      tr.appendChild(WW.el("td", num(s.current)));
      tr.appendChild(WW.el("td", s.suggested === null ? "none" : num(s.suggested)));
      tr.appendChild(WW.el("td", s.why));
      return tr;
    }));
    document.getElementById("baseline-config").textContent = b.config;
  }

  async function show(id) {
    error.textContent = "";
    const run = await WW.get("/api/tune/" + encodeURIComponent(id));
    const doc = run.document;
    info.textContent = "run " + run.id + " of " + WW.time(run.created) + " UTC" + (run.sensor ? " on " + run.sensor : "") + ": " +
      plural(run.captures.length, "capture") + ", " + num(run.packets) + " packets";
    document.querySelector("#run-captures ul").replaceChildren(...run.captures.map(c => WW.el("li", c)));
    charts.splice(0).forEach(c => c.destroy());
    const grid = document.getElementById("thresholds");
    grid.replaceChildren(...doc.thresholds.map(panel));
    if (!doc.thresholds.length) grid.appendChild(WW.el("p", "This run has no threshold to chart.", "muted"));
    untuned(doc);
    baseline(doc);
    document.body.dataset.loaded = "1";
  }

  async function load() {
    const data = await WW.get("/api/tune");
    if (!data.runs.length) {
      info.textContent = "No tune run saved yet: wirewatch tune CAPTURE... --db FILE";
      document.body.dataset.loaded = "1";
      return;
    }
    sel.replaceChildren(...data.runs.map(function (r) {
      const o = WW.el("option", "#" + r.id + " " + WW.time(r.created) + " — " + (r.captures[0] || "") +
                      (r.captures.length > 1 ? " (+" + (r.captures.length - 1) + ")" : ""));
      o.value = String(r.id);
      return o;
    }));
    const wanted = new URLSearchParams(location.search).get("run");
    if (wanted !== null) {
      if (![...sel.options].some(o => o.value === wanted)) {  // older than the list: ask for it anyway
        const o = WW.el("option", "#" + wanted); o.value = wanted; sel.appendChild(o);
      }
      sel.value = wanted;
    }
    await show(sel.value);
  }

  sel.addEventListener("change", function () {
    const u = new URL(location.href);
    u.searchParams.set("run", sel.value);
    history.replaceState(null, "", u);
    show(sel.value).catch(e => { error.textContent = e.message; document.body.dataset.loaded = "1"; });
  });
  load().catch(e => { error.textContent = e.message; document.body.dataset.loaded = "1"; });
})();
