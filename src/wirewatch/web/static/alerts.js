// Alerts table: filters, keyset pagination, live updates by polling for newer ids.
"use strict";
(function () {
  const form = document.getElementById("filters");
  const body = document.querySelector("#alert-table tbody");
  const status = document.getElementById("status");
  let newest = 0, oldest = null;
  // filters from the URL (e.g. a detail page's "all alerts from this source" link)
  const initial = new URLSearchParams(location.search);
  initial.forEach(function (v, k) { if (form.elements[k]) form.elements[k].value = v; });

  function params(extra) {
    const p = new URLSearchParams();
    for (const el of form.elements) {
      if (!el.name || !el.value) continue;
      if (el.type === "datetime-local") p.set(el.name, String(Date.parse(el.value + "Z") / 1000));
      else p.set(el.name, el.value);
    }
    for (const k in extra) p.set(k, extra[k]);
    return p;
  }
  async function load(reset) {
    try {
      const data = await WW.get("/api/alerts?" + params(reset || oldest === null ? {} : {before: oldest}));
      if (reset) body.replaceChildren();
      data.alerts.forEach(a => body.appendChild(WW.alertRow(a, true)));
      if (data.alerts.length) {
        if (reset || newest === 0) newest = Math.max(newest, data.alerts[0].id);
        oldest = data.alerts[data.alerts.length - 1].id;
      }
      if (reset && !data.alerts.length) { newest = data.latest_id; }
      // a bounded answer (no index narrows the filter): what was searched; "Older" searches on from there
      if (data.next_before !== null) oldest = data.next_before;
      const bound = document.getElementById("bound-note");
      bound.hidden = !data.bounded;
      if (data.bounded) {
        bound.textContent = "Searched alerts #" + data.bounded.searched_from + " to #" + (data.bounded.searched_below - 1) +
          " only (" + data.bounded.reason + "); \u201cOlder\u201d searches the alerts before them.";
      }
      document.getElementById("older").disabled = data.next_before === null;
      status.textContent = body.children.length + " shown";
      const note = document.getElementById("search-note");
      const s = data.search;  // present for a text search: how far the full-text index got
      note.hidden = !s || s.complete;
      if (s && !s.complete) {
        note.textContent = "Text search is still indexing: it covers alerts up to #" + s.indexed_through +
          " so far; the " + s.pending.toLocaleString() + " newer alerts are not searched yet.";
      }
    } catch (e) { status.textContent = e.message; }
  }
  async function poll() {
    try {
      const data = await WW.get("/api/alerts?" + params({after: newest, limit: 100}));
      data.alerts.slice().reverse().forEach(function (a) {
        const row = WW.alertRow(a, true); row.classList.add("fresh"); body.insertBefore(row, body.firstChild);
        newest = Math.max(newest, a.id);
      });
      if (data.alerts.length) status.textContent = body.children.length + " shown (" + data.alerts.length + " new)";
    } catch (e) { status.textContent = e.message; }
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); newest = 0; oldest = null; load(true); });
  document.getElementById("older").addEventListener("click", function () { load(false); });
  document.getElementById("select-all").addEventListener("change", function (ev) {
    body.querySelectorAll("input.pick").forEach(cb => { cb.checked = ev.target.checked; });
  });
  document.getElementById("ack-selected").addEventListener("click", async function () {
    const ids = Array.from(body.querySelectorAll("input.pick:checked")).map(cb => Number(cb.value));
    if (!ids.length) return;
    try {
      const r = await WW.post("/api/alerts/ack", {ids: ids});
      status.textContent = r.updated + " acknowledged";
      newest = 0; oldest = null; load(true);
    } catch (e) { status.textContent = e.message; }
  });
  load(true).then(function () { setInterval(poll, 2000); });
})();
