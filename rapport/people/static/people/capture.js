// Quick add and merge helpers. Strict CSP: wired through data-* attributes only.
"use strict";

(function () {
  // Ctrl/Cmd+Enter in the quick-add box previews; a live character count warns early.
  document.querySelectorAll("textarea[data-submit-on-ctrl-enter]").forEach(function (area) {
    var max = parseInt(area.getAttribute("data-max-chars") || "0", 10);
    var counter = area.form ? area.form.querySelector(".char-count") : null;
    function update() {
      if (!counter || !max) return;
      var n = area.value.length;
      counter.textContent = n > max ? n + " characters: too long" : "";
    }
    area.addEventListener("input", update);
    area.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        var button = area.form.querySelector("button[name=step][value=preview]");
        if (button) { button.click(); } else { area.form.submit(); }
      }
    });
    update();
  });

  // Merge: choose every value from one side at once.
  document.querySelectorAll("button[data-choose-all]").forEach(function (button) {
    button.addEventListener("click", function () {
      var side = button.getAttribute("data-choose-all");
      button.form.querySelectorAll('input[type=radio][name^="choice_"][value="' + side + '"]').forEach(function (r) {
        r.checked = true;
      });
    });
  });
})();
