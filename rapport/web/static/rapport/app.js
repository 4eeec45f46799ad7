// Rapport UI helpers. No framework, no build step; loaded with `defer` on every page.
// Strict CSP: no inline handlers, everything is wired here via data-* attributes.
"use strict";

(function () {
  // --- Keyboard: "/" focuses search, "n" opens quick add (unless typing in a field) -------
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/") {
      var q = document.getElementById("global-q");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
    } else if (e.key === "n") {
      window.location.href = "/quick-add/";
    }
  });

  // --- Live search: results as you type, arrow keys to move, Enter to open -----------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text; // textContent: results are never parsed as HTML
    return node;
  }

  document.querySelectorAll("input[data-live-search]").forEach(function (input) {
    var box = document.getElementById(input.getAttribute("aria-controls"));
    var url = input.getAttribute("data-live-search");
    var timer = null, seq = 0, selected = -1;

    function links() { return box.querySelectorAll("a"); }
    function select(i) {
      var all = links();
      all.forEach(function (a) { a.setAttribute("aria-selected", "false"); });
      if (all.length === 0) { selected = -1; return; }
      selected = (i + all.length) % all.length;
      all[selected].setAttribute("aria-selected", "true");
      all[selected].scrollIntoView({ block: "nearest" });
    }
    function hide() { box.hidden = true; input.setAttribute("aria-expanded", "false"); }
    function render(data) {
      box.replaceChildren();
      var any = false;
      (data.groups || []).forEach(function (g) {
        if (!g.results.length) return;
        any = true;
        box.appendChild(el("div", { "class": "group" }, g.label));
        g.results.forEach(function (r) {
          var a = el("a", { href: r.url, role: "option", "aria-selected": "false" }, r.title);
          if (r.subtitle) { a.appendChild(el("span", { "class": "muted small" }, "  " + r.subtitle)); }
          box.appendChild(a);
        });
      });
      if (!any) box.appendChild(el("div", { "class": "group" }, "No matches"));
      box.hidden = false; input.setAttribute("aria-expanded", "true"); selected = -1;
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 2) { hide(); return; }
      timer = setTimeout(function () {
        var mine = ++seq;
        fetch(url + "?format=json&q=" + encodeURIComponent(q), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { groups: [] }; })
          .then(function (data) { if (mine === seq) render(data); })
          .catch(function () { /* offline or server busy: keep the old results */ });
      }, 120);
    });
    input.addEventListener("keydown", function (e) {
      if (box.hidden) return;
      if (e.key === "ArrowDown") { e.preventDefault(); select(selected + 1); }
      else if (e.key === "ArrowUp") { e.preventDefault(); select(selected - 1); }
      else if (e.key === "Enter" && selected >= 0) { e.preventDefault(); window.location.href = links()[selected].href; }
      else if (e.key === "Escape") { hide(); }
    });
    document.addEventListener("click", function (e) { if (!input.form.contains(e.target)) hide(); });
  });

  // --- Confirm buttons: <button data-confirm="Really delete?"> ------------------------------
  document.addEventListener("submit", function (e) {
    var btn = e.submitter;
    var msg = (btn && btn.getAttribute("data-confirm")) || e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // --- Tabs: <div class="tabs" role="tablist"> with buttons aria-controls=panel ids --------
  document.querySelectorAll("[role=tablist]").forEach(function (list) {
    var tabs = list.querySelectorAll("[role=tab]");
    tabs.forEach(function (tab) {
      tab.addEventListener("click", function () {
        tabs.forEach(function (t) {
          var on = t === tab;
          t.setAttribute("aria-selected", on ? "true" : "false");
          var panel = document.getElementById(t.getAttribute("aria-controls"));
          if (panel) panel.hidden = !on;
        });
      });
    });
  });

  // --- Show/hide fields by activity kind: <select data-toggle-kind> + [data-kinds="call meeting"]
  document.querySelectorAll("select[data-toggle-kind]").forEach(function (sel) {
    var form = sel.form;
    function apply() {
      form.querySelectorAll("[data-kinds]").forEach(function (box) {
        box.hidden = box.getAttribute("data-kinds").split(" ").indexOf(sel.value) < 0;
      });
    }
    sel.addEventListener("change", apply); apply();
  });
})();
