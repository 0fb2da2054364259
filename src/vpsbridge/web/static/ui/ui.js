/* vpsbridge UI: behaviour shared by the client portal and the operator console.
 *
 * Loaded with `defer` on every page of ui/base.html. No inline handlers (the CSP forbids them):
 * everything is wired from data-* attributes here.
 *   data-theme-toggle        cycles auto -> light -> dark (remembered in localStorage)
 *   data-lang-select         sets the vpsb_lang cookie and reloads
 *   data-copy="text"         copies text to the clipboard, announces "Copied"
 *   form[data-confirm]       asks in a dialog before submitting; data-confirm-type="word" makes the
 *                            person type that word first (typed confirmation)
 *   data-mask-toggle         mask-sensitive (screenshot) mode, remembered per browser; elements with
 *                            data-mask="ipv4|ipv6|ip|host|text" and data-value are masked
 * htmx and VPSB.post() send the session's CSRF token in the X-CSRF-Token header.
 */
(function () {
  "use strict";
  var doc = document.documentElement;
  var strings = {};
  try { strings = JSON.parse(document.getElementById("ui-strings").textContent || "{}"); } catch (e) { strings = {}; }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function store(key, value) { try { if (value === null) { localStorage.removeItem(key); } else { localStorage.setItem(key, value); } } catch (e) { /* private mode */ } }
  function load(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }

  /* ---- toasts ---- */
  function toast(message, kind) {
    var box = document.querySelector("[data-toasts]");
    if (!box) { return; }
    var el = document.createElement("div");
    el.className = "toast" + (kind ? " toast-" + kind : "");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, kind === "error" ? 7000 : 3000);
  }

  /* ---- theme ---- */
  var THEMES = ["auto", "light", "dark"];
  function applyTheme(theme) {
    doc.setAttribute("data-theme", theme);
    store("vpsb_theme", theme === "auto" ? null : theme);
  }

  /* ---- masking ---- */
  function maskValue(kind, value) {
    if (!value) { return value; }
    if (kind === "ipv4" || (kind === "ip" && value.indexOf(":") < 0)) {
      var o = value.split(".");
      return o.length === 4 ? o[0] + "." + o[1] + ".x.x" : value.replace(/./g, "•");
    }
    if (kind === "ipv6" || kind === "ip") {
      var slash = value.indexOf("/");
      var addr = slash >= 0 ? value.slice(0, slash) : value;
      var h = addr.split(":");
      return h[0] + ":" + (h[1] || "") + ":…" + (slash >= 0 ? value.slice(slash) : "");
    }
    if (kind === "host") {
      return value.split(".").map(function (label) { return label ? label.charAt(0) + "•••" : label; }).join(".");
    }
    return value.replace(/\S/g, "•");
  }
  function applyMask(on) {
    doc.classList.toggle("masked", on);
    document.querySelectorAll("[data-mask][data-value]").forEach(function (el) {
      var original = el.getAttribute("data-value");
      el.textContent = on ? maskValue(el.getAttribute("data-mask"), original) : original;
    });
    document.querySelectorAll("[data-mask-toggle]").forEach(function (b) { b.setAttribute("aria-pressed", on ? "true" : "false"); });
  }
  function masked() { return doc.classList.contains("masked"); }

  /* ---- clipboard ---- */
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) { return navigator.clipboard.writeText(text); }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text; area.setAttribute("readonly", ""); area.className = "visually-hidden";
      document.body.appendChild(area); area.select();
      var ok = false; try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove(); if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  /* ---- confirmation dialog ---- */
  function confirmThen(form, onConfirm) {
    var dialog = document.querySelector("[data-confirm-dialog]");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(form.getAttribute("data-confirm"))) { onConfirm(); }
      return;
    }
    var typed = form.getAttribute("data-confirm-type");
    dialog.querySelector("[data-confirm-message]").textContent = form.getAttribute("data-confirm") || "";
    var typedBox = dialog.querySelector("[data-confirm-typed]");
    var input = dialog.querySelector("[data-confirm-input]");
    var ok = dialog.querySelector("[data-confirm-ok]");
    typedBox.hidden = !typed;
    input.value = "";
    if (typed) {
      dialog.querySelector("[data-confirm-typed-label]").textContent = (strings.type_to_confirm || "Type %(value)s to confirm").replace("%(value)s", typed);
      ok.disabled = true;
      input.oninput = function () { ok.disabled = input.value.trim() !== typed; };
    } else { ok.disabled = false; input.oninput = null; }
    dialog.returnValue = "";
    dialog.onclose = function () {
      if (dialog.returnValue === "ok" && (!typed || input.value.trim() === typed)) { onConfirm(); }
    };
    dialog.showModal();
    if (typed) { input.focus(); } else { ok.focus(); }
  }

  /* ---- POST helper ---- */
  function post(url, data) {
    var body = new URLSearchParams();
    Object.keys(data || {}).forEach(function (k) { body.append(k, data[k]); });
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRF-Token": csrfToken(), "Accept": "application/json" }
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (json) {
        if (!resp.ok) {
          var msg = (json && json.error && json.error.message) || strings.request_failed || "Request failed";
          var err = new Error(msg); err.status = resp.status; err.body = json; throw err;
        }
        return json;
      });
    });
  }

  /* ---- run fn every `ms` only while the page is visible and focused ---- */
  function whileVisible(fn, ms, element) {
    var timer = null;
    function active() {
      if (document.visibilityState !== "visible" || !document.hasFocus()) { return false; }
      if (element) { var r = element.getBoundingClientRect(); if (r.bottom < 0 || r.top > window.innerHeight) { return false; } }
      return true;
    }
    function tick() { if (active()) { fn(); } }
    timer = setInterval(tick, ms);
    document.addEventListener("visibilitychange", tick);
    window.addEventListener("focus", tick);
    return function stop() { clearInterval(timer); document.removeEventListener("visibilitychange", tick); window.removeEventListener("focus", tick); };
  }

  function init() {
    document.querySelectorAll("[data-theme-toggle]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var cur = doc.getAttribute("data-theme") || "auto";
        applyTheme(THEMES[(THEMES.indexOf(cur) + 1) % THEMES.length]);
      });
    });
    document.querySelectorAll("[data-lang-select]").forEach(function (sel) {
      sel.addEventListener("change", function () {
        document.cookie = "vpsb_lang=" + encodeURIComponent(sel.value) + "; path=/; max-age=31536000; SameSite=Lax";
        window.location.reload();
      });
    });
    document.querySelectorAll("[data-mask-toggle]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var on = !masked(); store("vpsb_mask", on ? "1" : null); applyMask(on);
      });
    });
    applyMask(masked());
    document.addEventListener("click", function (ev) {
      var btn = ev.target.closest ? ev.target.closest("[data-copy]") : null;
      if (!btn) { return; }
      ev.preventDefault();
      copyText(btn.getAttribute("data-copy")).then(
        function () { toast(strings.copied || "Copied"); btn.classList.add("copied"); },
        function () { toast(strings.copy_failed || "Copy failed", "error"); });
    });
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!form.matches || !form.matches("form[data-confirm]") || form.dataset.confirmed === "1") { return; }
      ev.preventDefault();
      var submitter = ev.submitter || null;
      confirmThen(form, function () {
        form.dataset.confirmed = "1";
        if (form.requestSubmit) { form.requestSubmit(submitter); } else { form.submit(); }
        setTimeout(function () { delete form.dataset.confirmed; }, 0);
      });
    }, true);
    document.body.addEventListener("htmx:configRequest", function (ev) {
      ev.detail.headers["X-CSRF-Token"] = csrfToken();
    });
    document.body.addEventListener("htmx:afterSwap", function () { applyMask(masked()); });
    document.body.addEventListener("htmx:responseError", function (ev) {
      var xhr = ev.detail.xhr; var msg = strings.request_failed || "Request failed";
      try { var j = JSON.parse(xhr.responseText); if (j.error && j.error.message) { msg = j.error.message; } } catch (e) { /* html */ }
      toast(msg, "error");
    });
    document.querySelectorAll("[data-pct]").forEach(function (el) {
      el.style.width = Math.max(0, Math.min(100, parseFloat(el.getAttribute("data-pct")) || 0)) + "%";
    });
  }

  window.VPSB = { post: post, toast: toast, csrfToken: csrfToken, whileVisible: whileVisible, applyMask: applyMask, maskValue: maskValue, masked: masked, strings: strings, confirmThen: confirmThen };
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
