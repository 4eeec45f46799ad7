// Checks a listening query as it is typed and shows the parser's message (with its column)
// under the field, using the same parser as the server (POST /api/v1/listening/queries/check).
(function () {
  "use strict";
  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  document.querySelectorAll("textarea.query-text[data-check-url]").forEach(function (field) {
    var out = document.getElementById(field.id + "-err");
    var timer = null;
    function check() {
      if (!field.value.trim()) return;
      fetch(field.dataset.checkUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify({ text: field.value })
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
        if (!data || !out) return;
        if (data.valid) {
          out.hidden = true; out.textContent = ""; field.removeAttribute("aria-invalid");
        } else {
          out.hidden = false; out.textContent = data.error; field.setAttribute("aria-invalid", "true");
        }
      }).catch(function () {});
    }
    field.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 300); });
  });
})();
