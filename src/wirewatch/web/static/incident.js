// One incident: the source's alerts on a timeline (per detector) and as a table.
"use strict";
(function () {
  const src = document.getElementById("src").dataset.src;
  const palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
  async function load() {
    const data = await WW.get("/api/incidents/" + encodeURIComponent(src));
    const body = document.querySelector("#timeline-table tbody");
    body.replaceChildren(...data.alerts.map(function (a) {
      const tr = document.createElement("tr");
      tr.appendChild(WW.el("td", WW.time(a.ts)));
      tr.appendChild(WW.el("td", a.sensor || "–"));
      tr.appendChild(WW.el("td", a.type));
      tr.appendChild(WW.el("td", a.severity, "sev" + a.severity));
      tr.appendChild(WW.el("td", a.dest_ip ? a.dest_ip + (a.dest_port !== null ? ":" + a.dest_port : "") : "–"));
      const msg = document.createElement("td"), link = document.createElement("a");
      link.href = "/alerts/" + encodeURIComponent(a.id); link.textContent = a.message; msg.appendChild(link);
      tr.appendChild(msg);
      return tr;
    }));
    if (typeof Chart !== "undefined") {
      const types = [...new Set(data.alerts.map(a => a.type))].sort();
      new Chart(document.getElementById("chart-timeline"), {type: "scatter",
        data: {datasets: types.map((t, i) => ({label: t, backgroundColor: palette[i % palette.length],
          data: data.alerts.filter(a => a.type === t).map(a => ({x: a.ts * 1000, y: i + 1}))}))},
        options: {animation: false, responsive: true, maintainAspectRatio: false,
          scales: {x: {type: "linear", ticks: {callback: v => WW.time(v / 1000).slice(11)}},
                   y: {min: 0, max: types.length + 1, ticks: {stepSize: 1, callback: v => types[v - 1] || ""}}}}});
    }
    document.body.dataset.loaded = "1";
  }
  load();
})();
