// Bulk actions: "select all" for the page, and only the value field that fits the chosen
// action is enabled (so one POST carries one value).
(function () {
  "use strict";
  var form = document.getElementById("bulk-form");
  if (!form) return;
  var all = document.getElementById("bulk-all");
  var action = document.getElementById("bulk-action");
  if (all) {
    all.addEventListener("change", function () {
      form.querySelectorAll('input[name="ids"]').forEach(function (b) { b.checked = all.checked; });
    });
  }
  function sync() {
    form.querySelectorAll("[data-for]").forEach(function (el) {
      var on = el.dataset.for === action.value;
      el.disabled = !on;
      el.closest("label").hidden = !on;
    });
  }
  if (action) { action.addEventListener("change", sync); sync(); }
})();
