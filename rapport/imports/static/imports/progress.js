// Polls the import's status while it runs and moves the <progress> bar; reloads the page
// when the phase ends so the server renders the result.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("import-progress");
    if (!box || box.hidden) return;
    var url = box.getAttribute("data-status-url");
    var initial = box.getAttribute("data-status");
    var bar = document.getElementById("import-bar");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { setTimeout(poll, 3000); return; }
          if (data.status !== initial) { window.location.reload(); return; }
          bar.max = Math.max(data.rows_total || 0, data.rows_done || 0, 1);
          bar.value = data.rows_done || 0;
          bar.textContent = data.percent + " %";
          ["rows_done", "rows_total", "created", "merged", "skipped", "failed"].forEach(function (k) {
            var el = box.querySelector('[data-field="' + k + '"]');
            if (el) el.textContent = String(data[k]);
          });
          setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
