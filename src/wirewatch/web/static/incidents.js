// Incidents: alerts grouped by attacking source across detectors and sensors.
"use strict";
(function () {
  const body = document.querySelector("#incident-table tbody");
  const scope = WW.sensorScope(() => refresh());
  function summary(counts) {
    return Object.keys(counts).sort((a, b) => counts[b] - counts[a]).map(k => (k || "(unnamed)") + " " + counts[k]).join(", ");
  }
  async function refresh() {
    const data = await WW.get("/api/incidents?" + scope());
    body.replaceChildren(...data.incidents.map(function (i) {
      const tr = document.createElement("tr");
      const src = document.createElement("td"), link = document.createElement("a");
      link.href = "/incidents/" + encodeURIComponent(i.src_ip); link.textContent = i.src_ip;
      src.appendChild(link); tr.appendChild(src);
      tr.appendChild(WW.el("td", i.alerts));
      tr.appendChild(WW.el("td", summary(i.types), "types"));
      tr.appendChild(WW.el("td", summary(i.sensors), "sensors"));
      tr.appendChild(WW.el("td", WW.time(i.first_seen)));
      tr.appendChild(WW.el("td", WW.time(i.last_seen)));
      tr.appendChild(WW.el("td", WW.duration(i.last_seen - i.first_seen)));
      return tr;
    }));
    document.body.dataset.loaded = "1";
  }
  refresh();
  setInterval(refresh, 5000);
})();
