"use strict";
(function () {
  const form = document.getElementById("mute-form");
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const f = form.elements;
    try {
      const r = await WW.post("/api/mutes", {type: f.type.value, cidr: f.cidr.value, dest_port: f.dest_port.value,
                                             hours: f.hours.value});
      form.appendChild(WW.el("span", " muted (mute #" + r.id + ")", "ok"));
    } catch (e) { form.appendChild(WW.el("span", " " + e.message, "error")); }
  });
  const ack = document.getElementById("ack");
  ack.addEventListener("click", async function () {
    try { await WW.post("/api/alerts/ack", {ids: [Number(ack.dataset.id)]}); ack.textContent = "Acknowledged"; ack.disabled = true; }
    catch (e) { ack.after(WW.el("span", " " + e.message, "error")); }
  });
})();
