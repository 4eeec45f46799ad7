/* Rapport web chat widget.
 *   <script src="https://<rapport>/chat/widget.js" data-channel="<public key>" async></script>
 * No inline styles or scripts, no third-party assets: it adds one <link> to Rapport's
 * widget.css and builds its panel with DOM calls (all text through textContent), so it works
 * under a strict host CSP that allows the Rapport origin in script-src, style-src and
 * connect-src. The visitor token lives in localStorage; agent replies arrive by polling
 * every 2 s while the panel is open (every 10 s while it is closed, to show a badge). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.channel) return;
  var key = script.dataset.channel;
  var base = new URL(script.src, location.href).origin;
  var api = base + "/chat/" + encodeURIComponent(key);
  var storeKey = "rapport-chat:" + key;
  var state = {};
  try { state = JSON.parse(localStorage.getItem(storeKey) || "{}") || {}; } catch (e) { state = {}; }
  function save() { try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode */ } }

  var link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = base + "/chat/widget.css";
  document.head.appendChild(link);

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }
  var root = el("div", "rapport-chat");
  var launcher = el("button", "rapport-chat-launcher", "Chat with us");
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  var badge = el("span", "rapport-chat-badge");
  badge.hidden = true;
  launcher.appendChild(badge);
  var panel = el("section", "rapport-chat-panel");
  panel.id = "rapport-chat-panel-" + key.slice(0, 8);
  panel.setAttribute("aria-label", "Chat");
  panel.hidden = true;
  launcher.setAttribute("aria-controls", panel.id);
  var head = el("div", "rapport-chat-head");
  head.appendChild(el("strong", "", "Chat with us"));
  var closeBtn = el("button", "rapport-chat-close", "×");
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", "Close the chat");
  head.appendChild(closeBtn);
  var log = el("ol", "rapport-chat-log");
  log.setAttribute("aria-live", "polite");
  var form = el("form", "rapport-chat-form");
  var emailLabel = el("label", "rapport-chat-label", "Your email (optional, so we can write back)");
  var email = el("input", "rapport-chat-email");
  email.type = "email"; email.maxLength = 320; email.autocomplete = "email";
  email.value = state.email || "";
  emailLabel.appendChild(email);
  var textLabel = el("label", "rapport-chat-label", "Message");
  var text = el("textarea", "rapport-chat-text");
  text.rows = 2; text.maxLength = 5000; text.required = true;
  textLabel.appendChild(text);
  var send = el("button", "rapport-chat-send", "Send");
  send.type = "submit";
  var status = el("p", "rapport-chat-status");
  status.setAttribute("role", "status");
  form.appendChild(emailLabel); form.appendChild(textLabel); form.appendChild(send); form.appendChild(status);
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(form);
  root.appendChild(launcher); root.appendChild(panel);
  (document.body || document.documentElement).appendChild(root);

  var shown = {};      // message id → true
  var pending = {};    // client id → <li> shown before the server confirmed it
  var lastId = state.lastId || 0;
  var unread = 0, timer = null, busy = false;

  function add(from, author, body, id, clientId) {
    if (id && shown[id]) return;
    if (clientId && pending[clientId]) {
      pending[clientId].classList.remove("rapport-chat-pending");
      delete pending[clientId];
      if (id) shown[id] = true;
      return;
    }
    var li = el("li", "rapport-chat-msg rapport-chat-" + from);
    if (author) li.appendChild(el("span", "rapport-chat-author", author));
    li.appendChild(el("span", "rapport-chat-body", body));
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    if (id) shown[id] = true;
    return li;
  }
  function call(method, path, body) {
    return fetch(api + path, {
      method: method, mode: "cors", credentials: "omit", cache: "no-store",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { data._status = r.status; return data; });
    });
  }
  function ensureToken() {
    if (state.token) return Promise.resolve(state.token);
    return call("POST", "/session").then(function (data) {
      if (!data.token) throw new Error(data.detail || "The chat is unavailable.");
      state.token = data.token; save();
      return state.token;
    });
  }
  function poll() {
    if (busy || !state.token) return;
    busy = true;
    call("GET", "/messages?after=" + lastId + "&token=" + encodeURIComponent(state.token))
      .then(function (data) {
        if (data._status === 401) { state = { email: state.email }; save(); return; }
        (data.items || []).forEach(function (m) {
          var before = log.children.length;
          add(m.from, m.from === "agent" ? m.author : "", m.text, m.id, m.client_id);
          if (m.from === "agent" && panel.hidden && log.children.length > before) unread += 1;
        });
        if (data.last_id) { lastId = data.last_id; state.lastId = lastId; save(); }
        badge.hidden = !unread; badge.textContent = unread ? String(unread) : "";
      })
      .catch(function () { /* offline: next tick */ })
      .then(function () { busy = false; });
  }
  function schedule() {
    clearInterval(timer);
    timer = setInterval(poll, panel.hidden ? 10000 : 2000);
  }
  function toggle(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) { unread = 0; badge.hidden = true; text.focus(); poll(); }
    schedule();
  }
  launcher.addEventListener("click", function () { toggle(panel.hidden); });
  closeBtn.addEventListener("click", function () { toggle(false); launcher.focus(); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { toggle(false); launcher.focus(); } });
  text.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : send.click(); }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = text.value.trim();
    if (!body) return;
    var clientId = Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    state.email = email.value.trim(); save();
    var li = add("visitor", "", body, 0, "");
    li.classList.add("rapport-chat-pending");
    pending[clientId] = li;
    text.value = "";
    status.textContent = "";
    var message = { client_id: clientId, text: body, email: state.email, page: location.href.slice(0, 2000) };
    function attempt(tries) {
      ensureToken().then(function (token) {
        message.token = token;
        return call("POST", "/messages", message);
      }).then(function (data) {
        if (data._status === 401 && tries > 0) { state.token = ""; save(); return attempt(tries - 1); }
        if (data._status >= 400) { status.textContent = data.detail || "Not sent."; li.classList.add("rapport-chat-failed"); }
        else { schedule(); poll(); }
      }).catch(function () {
        if (tries > 0) setTimeout(function () { attempt(tries - 1); }, 2000);  // same client id: never twice
        else { status.textContent = "Not sent: you seem to be offline."; li.classList.add("rapport-chat-failed"); }
      });
    }
    attempt(2);
  });
  if (state.token) poll();
  schedule();
})();
