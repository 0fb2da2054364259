/* Client portal behaviour (loaded after ui.js): live state badge, power buttons with fast polling
 * after an action, the traffic chart (uPlot, loaded on demand), live statistics refreshed only while
 * the panel is visible and the page focused, the service switcher and the rebuild gallery. */
(function () {
  "use strict";
  var VPSB = window.VPSB;
  var overview = document.querySelector("[data-state-url]");

  function setState(state) {
    var holder = document.querySelector("[data-state-badge]");
    if (holder) {
      var badge = holder.querySelector(".badge");
      if (badge && badge.getAttribute("data-state") !== state) {
        badge.className = "badge badge-" + state; badge.setAttribute("data-state", state); badge.textContent = state;
      }
    }
    document.querySelectorAll("[data-power-action]").forEach(function (btn) {
      var a = btn.getAttribute("data-power-action");
      var busy = state === "building" || state === "suspended" || state === "unknown";
      btn.disabled = busy || (a === "start" && state === "running") || (a !== "start" && state === "stopped");
    });
    var con = document.querySelector("[data-console-button]");
    if (con) { con.disabled = state !== "running"; }
  }

  var pollTimer = null;
  function pollState(fastUntil) {
    if (!overview) { return; }
    clearTimeout(pollTimer);
    fetch(overview.getAttribute("data-state-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) { if (j && j.state) { setState(j.state); } })
      .finally(function () {
        var fast = fastUntil && Date.now() < fastUntil;
        pollTimer = setTimeout(function () { pollState(fastUntil); }, fast ? 2000 : 30000);
      });
  }

  function initPower() {
    document.querySelectorAll("form[data-power-form]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (form.dataset.confirmed !== "1") { return; } /* ui.js asks first */
        ev.preventDefault();
        var buttons = document.querySelectorAll("[data-power-action]");
        buttons.forEach(function (b) { b.disabled = true; });
        var btn = form.querySelector("button"); btn.classList.add("busy");
        VPSB.post(form.getAttribute("action"), { action: form.querySelector("input[name=action]").value })
          .then(function () { VPSB.toast(btn.textContent.trim() + " ✓"); pollState(Date.now() + 60000); })
          .catch(function (err) { VPSB.toast(err.message, "error"); pollState(0); })
          .finally(function () { btn.classList.remove("busy"); });
      });
    });
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) { return "-"; }
    var u = ["B", "KiB", "MiB", "GiB", "TiB"]; var i = 0; n = Number(n);
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script"); s.src = src; s.onload = resolve; s.onerror = reject;
      var nonce = document.querySelector("script[nonce]"); if (nonce) { s.nonce = nonce.nonce; }
      document.head.appendChild(s);
    });
  }
  function loadCss(href) { var l = document.createElement("link"); l.rel = "stylesheet"; l.href = href; document.head.appendChild(l); }

  var RX_COLOR = "#2563eb", TX_COLOR = "#f59e0b"; /* the legend swatches in ui.css use the same */

  function monthLabel(key, style) {
    /* "2026-03" -> "Mar 26" in the page's language; the key itself if Intl cannot help */
    try {
      var parts = key.split("-");
      var date = new Date(Date.UTC(Number(parts[0]), Number(parts[1]) - 1, 1));
      var opts = style === "long" ? { month: "long", year: "numeric", timeZone: "UTC" } : { month: "short", year: "2-digit", timeZone: "UTC" };
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined, opts).format(date);
    } catch (e) { return key; }
  }

  function fillTrafficTable(panel, months) {
    /* the text alternative: one row per charted month, read by screen readers instead of the canvas */
    var body = panel.querySelector("[data-traffic-table] tbody");
    if (!body) { return; }
    body.textContent = "";
    months.forEach(function (m) {
      var tr = document.createElement("tr"); tr.setAttribute("data-month", m.month);
      var th = document.createElement("th"); th.scope = "row"; th.textContent = monthLabel(m.month, "long"); tr.appendChild(th);
      [m.rx, m.tx].forEach(function (v) { var td = document.createElement("td"); td.textContent = fmtBytes(v); tr.appendChild(td); });
      body.appendChild(tr);
    });
  }

  function trafficTicks(max) {
    /* Five evenly spaced byte ticks from 0 with round steps (1, 2, 2.5, 5 x a power of 1024 or 10), so
     * no two labels read the same; an empty or tiny month still gets a readable 0..1 GiB scale. */
    var stepRaw = Math.max(max * 1.05, Math.pow(1024, 3)) / 4;
    var unit = Math.pow(1024, Math.floor(Math.log(stepRaw) / Math.log(1024)));
    var nice = [1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].find(function (n) { return n * unit >= stepRaw; }) || 1024;
    var step = nice * unit;
    return [0, step, 2 * step, 3 * step, 4 * step];
  }
  function tickLabel(n) { return fmtBytes(n).replace(/\.0 /, " "); }

  function drawTraffic(chart, months) {
    var top = 0;
    months.forEach(function (m) { top = Math.max(top, Number(m.rx) || 0, Number(m.tx) || 0); });
    var ticks = trafficTicks(top);
    var xs = months.map(function (_m, i) { return i; });
    var bars = function (align) {
      return window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.36, 28], align: align }) : undefined;
    };
    var width = Math.max(280, chart.clientWidth || 600);
    chart.textContent = "";
    return new window.uPlot({
      width: width, height: 240,
      legend: { show: false }, /* the page has its own legend above the chart */
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: [-0.6, Math.max(0.6, months.length - 0.4)] }, y: { range: function () { return [0, ticks[4]]; } } },
      axes: [{ splits: function () { return xs; }, values: function (_u, vals) { return vals.map(function (v) { return months[v] ? monthLabel(months[v].month) : ""; }); }, grid: { show: false } },
             { splits: function () { return ticks; }, values: function (_u, vals) { return vals.map(tickLabel); }, size: 80 }],
      series: [{}, { label: chart.getAttribute("data-label-rx"), stroke: RX_COLOR, fill: RX_COLOR, width: 0, paths: bars(-1), points: { show: false } },
                   { label: chart.getAttribute("data-label-tx"), stroke: TX_COLOR, fill: TX_COLOR, width: 0, paths: bars(1), points: { show: false } }]
    }, [xs, months.map(function (m) { return m.rx; }), months.map(function (m) { return m.tx; })], chart);
  }

  function initTraffic() {
    var panel = document.querySelector("[data-traffic-url]");
    if (!panel) { return; }
    fetch(panel.getAttribute("data-traffic-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (t) {
        var text = panel.querySelector("[data-traffic-text]");
        var chart = panel.querySelector("[data-traffic-chart]");
        var months = t.months || [];
        var used = fmtBytes(t.rx + t.tx) + " / " + (t.limit ? fmtBytes(t.limit) : (panel.getAttribute("data-unmetered") || "∞"));
        text.textContent = used + " · ↓ " + fmtBytes(t.rx) + " · ↑ " + fmtBytes(t.tx);
        /* the overview's figure comes from the same platform report, so both always agree */
        var summary = document.querySelector("[data-traffic-summary]");
        if (summary) { summary.textContent = used; }
        var note = panel.querySelector("[data-traffic-estimated]");
        if (note) { note.hidden = !t.estimated; }
        fillTrafficTable(panel, months);
        chart.setAttribute("data-months", String(months.length));
        loadCss("/static/vendor/uplot/uPlot.min.css");
        return loadScript("/static/vendor/uplot/uPlot.iife.min.js").then(function () {
          drawTraffic(chart, months);
          chart.setAttribute("data-drawn", "1");
        });
      })
      .catch(function () { var text = panel.querySelector("[data-traffic-text]"); if (text) { text.textContent = VPSB.strings.request_failed || "-"; } });
  }

  function initStats() {
    var panel = document.querySelector("[data-stats-url]");
    if (!panel) { return; }
    function refresh() {
      fetch(panel.getAttribute("data-stats-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j) { return; }
          var s = j.stats || {};
          panel.querySelectorAll("[data-stat]").forEach(function (el) {
            var k = el.getAttribute("data-stat"); var v = s[k];
            if (v === undefined) { el.textContent = "-"; return; }
            if (k === "cpu_pct") { el.textContent = Number(v).toFixed(1) + " %"; }
            else if (k === "memory_used_mb") { el.textContent = fmtBytes(v * 1048576); }
            else { el.textContent = fmtBytes(v) + "/s"; }
          });
          var body = panel.querySelector("[data-filesystems] tbody");
          body.textContent = "";
          (j.filesystems || []).forEach(function (fs) {
            var tr = document.createElement("tr");
            [fs.mount, fs.type, fmtBytes(fs.used_bytes), fmtBytes(fs.size_bytes)].forEach(function (v) {
              var td = document.createElement("td"); td.textContent = v === undefined ? "-" : v; tr.appendChild(td);
            });
            body.appendChild(tr);
          });
          panel.setAttribute("data-loaded", j.at || "1");
        });
    }
    refresh();
    VPSB.whileVisible(refresh, 30000, panel);
  }

  function initSwitcher() {
    var sel = document.querySelector("[data-service-switch]");
    if (sel) { sel.addEventListener("change", function () { window.location.assign(sel.value); }); }
  }

  function initRebuild() {
    var form = document.querySelector("[data-rebuild-form]");
    if (!form) { return; }
    var search = form.querySelector("[data-os-search]");
    search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      form.querySelectorAll("[data-os-group]").forEach(function (group) {
        var any = false;
        group.querySelectorAll("[data-os-name]").forEach(function (card) {
          var hit = !q || card.getAttribute("data-os-name").indexOf(q) >= 0; card.hidden = !hit; any = any || hit;
        });
        group.hidden = !any;
      });
    });
    var confirm = form.querySelector("[data-confirm-expected]");
    var submit = form.querySelector("[data-rebuild-submit]");
    function check() { submit.disabled = confirm.value.trim() !== confirm.getAttribute("data-confirm-expected") || !form.querySelector("input[name=os]:checked"); }
    form.addEventListener("input", check); form.addEventListener("change", check);
  }

  function initConsole() {
    var form = document.querySelector("[data-console-form]");
    if (!form) { return; }
    form.addEventListener("submit", function () {
      window.open("about:blank", form.getAttribute("target"), "popup,width=1024,height=800");
    });
  }

  function init() {
    initPower(); initTraffic(); initStats(); initSwitcher(); initRebuild(); initConsole();
    if (overview) { pollTimer = setTimeout(function () { pollState(0); }, 30000); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
