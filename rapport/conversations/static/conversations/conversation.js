// New messages appear without a reload: poll the conversation's messages.json every 1.5 s
// (under the 2 s promise), append the server-rendered, sanitised fragment, and slow down
// while the tab is hidden.
(function () {
  "use strict";
  var list = document.getElementById("history");
  if (!list || !list.dataset.poll) return;
  var url = list.dataset.poll;
  var lastId = parseInt(list.dataset.lastId || "0", 10) || 0;
  var busy = false;

  function tick() {
    if (busy) return;
    busy = true;
    fetch(url + "?after=" + lastId, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.count > 0 && data.last_id > lastId) {
          lastId = data.last_id;
          list.insertAdjacentHTML("beforeend", data.html);
        }
      })
      .catch(function () { /* offline for a moment: the next tick retries */ })
      .finally(function () { busy = false; });
  }

  setInterval(function () { if (!document.hidden) tick(); }, 1500);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
})();
