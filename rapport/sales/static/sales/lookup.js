// Record pickers without a select box: <input data-lookup="/people/lookup/" list="person-options">
// fills its <datalist> from a small JSON endpoint as the user types. Picking an option puts
// "Name (#id)" in the field, which the server reads back; typing an exact name works too.
"use strict";

(function () {
  document.querySelectorAll("input[data-lookup]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list) return;
    var url = input.getAttribute("data-lookup");
    var timer = null, seq = 0;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 2 || /\(#\d+\)$/.test(q)) return;
      timer = setTimeout(function () {
        var mine = ++seq;
        fetch(url + "?q=" + encodeURIComponent(q), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { results: [] }; })
          .then(function (data) {
            if (mine !== seq) return;
            list.replaceChildren();
            (data.results || []).forEach(function (r) {
              var option = document.createElement("option");
              option.value = r.value;          // set as properties: never parsed as HTML
              option.label = r.label;
              list.appendChild(option);
            });
          })
          .catch(function () { /* offline: the user can still type an exact name */ });
      }, 150);
    });
  });

  // Repeatable rows: <button data-add-row="#container .row"> clones the last row, emptied.
  document.querySelectorAll("button[data-add-row]").forEach(function (button) {
    button.addEventListener("click", function () {
      var rows = document.querySelectorAll(button.getAttribute("data-add-row"));
      if (!rows.length) return;
      var last = rows[rows.length - 1];
      var copy = last.cloneNode(true);
      var n = rows.length + 1;
      copy.querySelectorAll("input, select, label").forEach(function (el) {
        if (el.tagName === "INPUT") el.value = "";
        ["id", "for"].forEach(function (attr) {
          var v = el.getAttribute(attr);
          if (v) el.setAttribute(attr, v.replace(/\d+$/, "") + n);
        });
      });
      last.after(copy);
      var first = copy.querySelector("input");
      if (first) first.focus();
    });
  });
})();
