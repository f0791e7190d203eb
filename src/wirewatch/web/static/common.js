// Shared helpers. Packet-derived values are only ever set with textContent.
"use strict";
const WW = {
  csrf: document.querySelector('meta[name="csrf-token"]').content,
  async get(url) {
    const r = await fetch(url, {credentials: "same-origin"});
    if (r.status === 401) { location.href = "/login"; throw new Error("login"); }
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
    return r.json();
  },
  async post(url, body) {
    const r = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": WW.csrf}, body: JSON.stringify(body)});
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error || r.statusText);
    return data;
  },
  el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  },
  duration(s) {
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  },
  // the page's sensor select, kept in the URL so a reload or a shared link keeps it
  sensorScope(onChange) {
    const sel = document.getElementById("sensor");
    const initial = new URLSearchParams(location.search).get("sensor");
    if (sel && initial) sel.value = initial;
    if (sel) sel.addEventListener("change", function () {
      const u = new URL(location.href);
      if (sel.value) u.searchParams.set("sensor", sel.value); else u.searchParams.delete("sensor");
      history.replaceState(null, "", u);
      onChange();
    });
    return () => (sel && sel.value ? "sensor=" + encodeURIComponent(sel.value) : "");
  },
  owner(e) {  // enrichment of one address -> "US · GOOGLE" / "private", "" when unknown
    if (!e) return "";
    const as = e.as ? (e.as.number ? "AS" + e.as.number + " " : "") + (e.as.name || "") : "";
    return e.label === "public" ? [e.country, as.trim()].filter(Boolean).join(" · ") : (e.label || "");
  },
  withOwner(ip, e) { const o = WW.owner(e); return o ? ip + " (" + o + ")" : ip; },
  time(epoch) { return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19); },
  alertRow(a, withCheckbox) {
    const tr = document.createElement("tr");
    tr.dataset.id = a.id;
    if (withCheckbox) {
      const td = document.createElement("td"), cb = document.createElement("input");
      cb.type = "checkbox"; cb.className = "pick"; cb.value = a.id; td.appendChild(cb); tr.appendChild(td);
    }
    tr.appendChild(WW.el("td", WW.time(a.ts)));
    tr.appendChild(WW.el("td", a.type));
    tr.appendChild(WW.el("td", a.severity, "sev" + a.severity));
    const en = a.enrichment || {};
    tr.appendChild(WW.el("td", a.src_ip ? WW.withOwner(a.src_ip, en.src) : "–"));
    tr.appendChild(WW.el("td", a.dest_ip ? WW.withOwner(a.dest_ip + (a.dest_port !== null ? ":" + a.dest_port : ""), en.dest) : "–"));
    if (withCheckbox) tr.appendChild(WW.el("td", a.sensor || "–"));
    const msg = document.createElement("td"), link = document.createElement("a");
    link.href = "/alerts/" + encodeURIComponent(a.id); link.textContent = a.message;
    if (a.update_of) {  // an update of an earlier alert: said so, linked to that alert (all text via textContent)
      const of = document.createElement("a");
      of.className = "update-of"; of.href = "/alerts/" + encodeURIComponent(a.id) + "/updated";
      of.textContent = "update of"; of.title = a.update_of.message + " (" + a.update_of.timestamp + ")";
      msg.appendChild(of); msg.appendChild(document.createTextNode(" "));
    }
    msg.appendChild(link);
    tr.appendChild(msg);
    if (withCheckbox) tr.appendChild(WW.el("td", (a.acknowledged ? "acknowledged " : "") + (a.muted ? "muted" : "")));
    return tr;
  },
};
