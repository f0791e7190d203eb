// Sensors: every sensor's health, refreshed; a quiet sensor is marked.
"use strict";
(function () {
  const body = document.querySelector("#sensor-table tbody");
  function num(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits || 0); }
  async function refresh() {
    const data = await WW.get("/api/sensors");
    document.getElementById("quiet-after").textContent = String(data.quiet_after_s);
    body.replaceChildren(...data.sensors.map(function (s) {
      const tr = document.createElement("tr");
      tr.dataset.sensor = s.sensor;
      tr.className = s.quiet ? "quiet" : "";
      const name = document.createElement("td"), link = document.createElement("a");
      link.href = "/?sensor=" + encodeURIComponent(s.sensor); link.textContent = s.sensor || "(unnamed)";
      name.appendChild(link); tr.appendChild(name);
      tr.appendChild(WW.el("td", s.quiet ? "quiet" : (s.final ? "stopped" : "reporting"), "state"));
      tr.appendChild(WW.el("td", WW.time(s.last_seen)));
      tr.appendChild(WW.el("td", WW.duration(s.age_s)));
      tr.appendChild(WW.el("td", s.interface || "–"));
      tr.appendChild(WW.el("td", num(s.packets_per_s, 1)));
      tr.appendChild(WW.el("td", s.packets));
      tr.appendChild(WW.el("td", s.kernel_drops));
      tr.appendChild(WW.el("td", s.decode_errors));
      const alerts = document.createElement("td"), al = document.createElement("a");
      al.href = "/alerts?sensor=" + encodeURIComponent(s.sensor); al.textContent = String(s.alerts);
      alerts.appendChild(al); tr.appendChild(alerts);
      return tr;
    }));
    document.body.dataset.loaded = "1";
  }
  refresh();
  setInterval(refresh, 5000);
})();
