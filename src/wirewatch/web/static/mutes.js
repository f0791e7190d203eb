"use strict";
document.querySelectorAll("[data-epoch]").forEach(function (td) { td.textContent = WW.time(Number(td.dataset.epoch)); });
document.querySelectorAll("button.end-mute").forEach(function (b) {
  b.addEventListener("click", async function () {
    await WW.post("/api/mutes/" + encodeURIComponent(b.dataset.id) + "/end", {});
    location.reload();
  });
});
