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

// Canned answers: typing "/" and part of a title at the start of a line opens a listbox of
// matching answers (already filled in for this conversation by the server); arrows move,
// Enter or Tab inserts, Escape closes. The text is inserted as plain textarea text.
(function () {
  "use strict";
  var area = document.getElementById("reply-text");
  var box = document.getElementById("canned-list");
  if (!area || !box || !area.dataset.canned) return;
  var items = [], active = -1, timer = null, seq = 0;

  function slashQuery() {
    var upto = area.value.slice(0, area.selectionStart);
    var m = /(^|\n)\/([^\n]{0,60})$/.exec(upto);
    return m ? { query: m[2], start: upto.length - m[2].length - 1 } : null;
  }
  function close() { box.hidden = true; box.textContent = ""; items = []; active = -1; area.removeAttribute("aria-activedescendant"); }
  function mark() {
    Array.prototype.forEach.call(box.children, function (li, i) {
      li.setAttribute("aria-selected", i === active ? "true" : "false");
    });
    if (active >= 0) area.setAttribute("aria-activedescendant", "canned-opt-" + active);
  }
  function render() {
    box.textContent = "";
    if (!items.length) { close(); return; }
    items.forEach(function (it, i) {
      var li = document.createElement("li");
      li.id = "canned-opt-" + i;
      li.setAttribute("role", "option");
      var strong = document.createElement("strong");
      strong.textContent = "/" + it.title;
      var span = document.createElement("span");
      span.className = "muted";
      span.textContent = " " + it.text.slice(0, 80);
      li.appendChild(strong); li.appendChild(span);
      li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
      box.appendChild(li);
    });
    box.hidden = false;
    active = 0; mark();
  }
  function choose(i) {
    var q = slashQuery();
    var it = items[i];
    if (!q || !it) { close(); return; }
    var before = area.value.slice(0, q.start), after = area.value.slice(area.selectionStart);
    area.value = before + it.text + after;
    var pos = (before + it.text).length;
    area.setSelectionRange(pos, pos);
    close();
  }
  function lookup() {
    var q = slashQuery();
    if (!q) { close(); return; }
    var mine = ++seq;
    fetch(area.dataset.canned + "?q=" + encodeURIComponent(q.query), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (data) { if (mine === seq) { items = data.items || []; render(); } })
      .catch(close);
  }
  area.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(lookup, 120); });
  area.addEventListener("keydown", function (e) {
    if (box.hidden || !items.length) return;
    if (e.key === "ArrowDown") { active = (active + 1) % items.length; mark(); e.preventDefault(); }
    else if (e.key === "ArrowUp") { active = (active - 1 + items.length) % items.length; mark(); e.preventDefault(); }
    else if (e.key === "Enter" || e.key === "Tab") { choose(active); e.preventDefault(); }
    else if (e.key === "Escape") { close(); e.preventDefault(); }
  });
  area.addEventListener("blur", function () { setTimeout(close, 150); });
})();
