// Pipeline board: drag a card to another column to change the deal's stage.
// POSTs form-encoded `stage` + `version` to /deals/<id>/move/ with the CSRF token from the
// `csrftoken` cookie. The card moves at once and goes back if the server says no (conflict,
// no right to edit, network failure), with a message saying why. Each card's "Move…" link
// opens a stage picker on the card (keyboard users); without JS it leads to the move page.
"use strict";

(function () {
  var board = document.querySelector("[data-board]");
  if (!board) return;
  var status = document.querySelector("[data-board-status]");
  var dragged = null;

  function cookie(name) {
    var match = document.cookie.split("; ").find(function (c) { return c.indexOf(name + "=") === 0; });
    return match ? decodeURIComponent(match.slice(name.length + 1)) : "";
  }

  function say(text, kind) {
    if (!status) return;
    status.textContent = text;          // textContent: server text is never parsed as HTML
    status.className = "board-status msg msg-" + (kind || "info");
    status.hidden = false;
  }

  // Keep a column's count, total and weighted total in step with the cards moved in or out.
  function count(column, delta, card) {
    var el = column.querySelector("[data-count]");
    if (el) el.textContent = String(Math.max(0, parseInt(el.textContent, 10) + delta));
    var totalEl = column.querySelector("[data-total]");
    var amount = parseFloat(card && card.getAttribute("data-amount")) || 0;
    if (!totalEl) return;
    var total = Math.max(0, (parseFloat(totalEl.getAttribute("data-total")) || 0) + delta * amount);
    totalEl.setAttribute("data-total", String(total));
    totalEl.textContent = Math.round(total).toLocaleString("en");
    var weightedEl = column.querySelector("[data-weighted]");
    var probability = parseFloat(column.getAttribute("data-probability")) || 0;
    if (weightedEl) weightedEl.textContent = Math.round(total * probability / 100).toLocaleString("en");
  }

  function move(card, column) {
    var from = card.closest("[data-stage-id]");
    if (!from || from === column) return;
    var next = card.nextElementSibling;
    column.querySelector("[data-cards]").prepend(card);
    count(from, -1, card); count(column, +1, card);
    var body = new URLSearchParams();
    body.set("stage", column.getAttribute("data-stage-id"));
    body.set("version", card.getAttribute("data-version") || "");
    fetch("/deals/" + card.getAttribute("data-deal-id") + "/move/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": cookie("csrftoken"), "Accept": "application/json",
                 "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    })
      .then(function (r) {
        return r.json().catch(function () { return { ok: false, detail: "The server answered " + r.status + "." }; })
          .then(function (data) { return { ok: r.ok && data.ok, data: data }; });
      })
      .then(function (res) {
        if (!res.ok) throw new Error(res.data.detail || "The move was not saved.");
        card.setAttribute("data-version", res.data.version);
        say("Moved “" + (card.querySelector("a") || card).textContent.trim() + "”.", "success");
      })
      .catch(function (err) {
        // Put the card back exactly where it was.
        var cards = from.querySelector("[data-cards]");
        if (next && next.parentNode === cards) cards.insertBefore(card, next); else cards.appendChild(card);
        count(column, -1, card); count(from, +1, card);
        say((err && err.message) || "The move was not saved.", "error");
      });
  }

  board.addEventListener("dragstart", function (e) {
    var card = e.target.closest && e.target.closest(".card[draggable=true]");
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.getAttribute("data-deal-id"));
  });
  board.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
  });
  board.addEventListener("dragover", function (e) {
    var column = e.target.closest && e.target.closest("[data-stage-id]");
    if (!column || !dragged) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
    board.querySelectorAll(".drop-target").forEach(function (c) { if (c !== column) c.classList.remove("drop-target"); });
    column.classList.add("drop-target");
  });
  board.addEventListener("drop", function (e) {
    var column = e.target.closest && e.target.closest("[data-stage-id]");
    if (!column || !dragged) return;
    e.preventDefault();
    column.classList.remove("drop-target");
    move(dragged, column);
  });

  // "Move…" on a card: a stage picker built from the board's own columns, in place.
  function closePicker(card) {
    var open = card.querySelector(".move-form");
    if (open) open.remove();
  }
  board.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest(".move-link");
    if (!link) return;
    e.preventDefault();
    var card = link.closest(".card");
    if (card.querySelector(".move-form")) { closePicker(card); return; }
    var here = card.closest("[data-stage-id]");
    var id = "mv-" + card.getAttribute("data-deal-id");
    var form = document.createElement("form");
    form.className = "move-form";
    var label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = id;
    label.textContent = "Move to";
    var select = document.createElement("select");
    select.id = id;
    select.className = "small";
    board.querySelectorAll("[data-stage-id]").forEach(function (column) {
      if (column === here) return;
      var option = document.createElement("option");
      option.value = column.getAttribute("data-stage-id");
      var name = column.querySelector("h2 span");
      option.textContent = name ? name.textContent : option.value;  // text, never HTML
      select.appendChild(option);
    });
    var button = document.createElement("button");
    button.type = "submit";
    button.className = "btn btn-small";
    button.textContent = "Move";
    form.append(label, select, button);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var target = board.querySelector("[data-stage-id='" + select.value + "']");
      closePicker(card);
      if (target) move(card, target);
      card.focus();
    });
    form.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { closePicker(card); link.focus(); }
    });
    card.appendChild(form);
    select.focus();
  });

  // "Show more" under a column: the next cards, biggest first, from the server as the same
  // card markup (every value escaped there), appended to the column.
  board.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest(".more-cards");
    if (!button) return;
    var column = button.closest("[data-stage-id]");
    var url = "/pipeline/stages/" + column.getAttribute("data-stage-id") + "/cards/?after=" +
      encodeURIComponent(button.getAttribute("data-more"));
    if (new URLSearchParams(window.location.search).get("owner") === "me") url += "&owner=me";
    button.disabled = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (!data.ok) throw new Error(data.detail || "Could not load more deals.");
        var cards = column.querySelector("[data-cards]");
        var holder = document.createElement("div");
        holder.innerHTML = data.html;  // server-built card markup, every value escaped
        while (holder.firstChild) cards.appendChild(holder.firstChild);
        if (data.more) { button.setAttribute("data-more", data.more); button.disabled = false; }
        else button.remove();
      })
      .catch(function (err) {
        button.disabled = false;
        say((err && err.message) || "Could not load more deals.", "error");
      });
  });
})();
