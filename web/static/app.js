// Switchyard: refresh the main panel in place every few seconds, and give
// scripts the CSRF token. Pages work without this file; it only saves
// pressing reload. The server answers a request carrying
// "HX-Request: true" with the panel fragment.
(function () {
  "use strict";
  // The CSRF token of the session comes from <meta name="csrf-token">
  // (no inline script under the CSP). State-changing fetches must send it
  // as X-CSRF-Token; window.switchyardFetch does.
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  window.switchyardFetch = function (url, opts) {
    opts = opts || {};
    opts.credentials = "same-origin";
    opts.headers = opts.headers || {};
    var method = (opts.method || "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD" && csrf) {
      opts.headers["X-CSRF-Token"] = csrf;
    }
    return fetch(url, opts);
  };

  var panel = document.getElementById("panel");
  if (!panel) return;
  var every = parseInt(panel.getAttribute("data-refresh-ms") || "0", 10);
  if (!every) return;
  var busy = false;

  function refresh() {
    // Do not pull the page from under a reader who is selecting text or
    // looking at another tab.
    if (busy || document.hidden) return;
    var sel = window.getSelection && window.getSelection();
    if (sel && sel.toString() !== "") return;
    // Nor from under someone typing in a filter box.
    var active = document.activeElement;
    if (active && panel.contains(active) && (active.tagName === "INPUT" || active.tagName === "SELECT")) return;
    busy = true;
    window.switchyardFetch(window.location.href, {
      headers: { "HX-Request": "true" },
      cache: "no-store"
    }).then(function (resp) {
      // The session ended: a full load goes through the login form.
      if (resp.status === 401) {
        window.location.reload();
        throw new Error("signed out");
      }
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.text();
    }).then(function (html) {
      panel.innerHTML = html;
      panel.removeAttribute("data-refresh-failed");
      // A page whose subject has settled (a finished job) says so.
      if (panel.querySelector("[data-refresh-stop]")) window.clearInterval(timer);
    }).catch(function () {
      // Keep the last content; the marker dims it so nobody trusts stale data.
      panel.setAttribute("data-refresh-failed", "true");
    }).finally(function () {
      busy = false;
    });
  }
  var timer = window.setInterval(refresh, every);
})();

// The trace waterfall: collapse and expand subtrees, filter by service,
// find a span. Rows are rendered by the server (the page works without
// this); one delegated listener per kind of event keeps a 5,000-row trace
// responsive. Rows carry data-row, data-desc (how many rows below it
// belong to its subtree), data-service and data-text.
(function () {
  "use strict";
  function init(root) {
    var wf = root.querySelector('[data-testid="waterfall"]');
    if (!wf || wf.getAttribute("data-wf-ready")) return;
    wf.setAttribute("data-wf-ready", "true");
    wf.classList.add("js");
    var list = wf.querySelector(".wf-rows");
    var rows = Array.prototype.slice.call(list.children);
    var collapsed = {};
    var hiddenServices = {};

    // A row is shown unless an ancestor is collapsed (toggle) or its
    // service is filtered out (filter).
    function applyCollapse() {
      for (var i = 0; i < rows.length; i++) {
        rows[i].classList.remove("wf-folded");
      }
      for (var j = 0; j < rows.length; j++) {
        if (!collapsed[j]) continue;
        var n = parseInt(rows[j].getAttribute("data-desc") || "0", 10);
        for (var k = j + 1; k <= j + n && k < rows.length; k++) rows[k].classList.add("wf-folded");
      }
    }

    wf.addEventListener("click", function (ev) {
      var t = ev.target;
      var toggle = t.closest && t.closest("[data-toggle]");
      if (toggle) {
        ev.preventDefault();
        ev.stopPropagation();
        var i = parseInt(toggle.getAttribute("data-toggle"), 10);
        collapsed[i] = !collapsed[i];
        toggle.setAttribute("aria-expanded", collapsed[i] ? "false" : "true");
        toggle.textContent = collapsed[i] ? "▸" : "▾";
        rows[i].classList.toggle("wf-collapsed", !!collapsed[i]);
        applyCollapse();
        return;
      }
      var find = t.closest && t.closest("[data-find]");
      if (find) {
        ev.preventDefault();
        step(find.getAttribute("data-find") === "prev" ? -1 : 1);
      }
    });

    wf.addEventListener("change", function (ev) {
      var svc = ev.target.getAttribute && ev.target.getAttribute("data-service-filter");
      if (svc === null || svc === undefined) return;
      hiddenServices[svc] = !ev.target.checked;
      for (var i = 0; i < rows.length; i++) {
        var s = rows[i].getAttribute("data-service");
        rows[i].classList.toggle("wf-filtered", !!(s && hiddenServices[s]));
      }
    });

    var matches = [];
    var current = -1;
    var count = wf.querySelector('[data-testid="wf-find-count"]');
    function step(dir) {
      if (!matches.length) return;
      if (current >= 0) matches[current].classList.remove("wf-current");
      current = (current + dir + matches.length) % matches.length;
      var r = matches[current];
      r.classList.add("wf-current");
      r.scrollIntoView({ block: "center" });
      if (count) count.textContent = (current + 1) + " of " + matches.length;
    }
    var findBox = wf.querySelector('[data-testid="wf-find"]');
    if (findBox) {
      findBox.addEventListener("input", function () {
        var q = findBox.value.trim().toLowerCase();
        for (var m = 0; m < matches.length; m++) matches[m].classList.remove("wf-match", "wf-current");
        matches = [];
        current = -1;
        if (q) {
          for (var i = 0; i < rows.length; i++) {
            if ((rows[i].getAttribute("data-text") || "").toLowerCase().indexOf(q) >= 0) {
              rows[i].classList.add("wf-match");
              matches.push(rows[i]);
            }
          }
        }
        if (count) count.textContent = q ? matches.length + " found" : "";
        if (matches.length) step(1);
      });
      findBox.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") {
          ev.preventDefault();
          step(ev.shiftKey ? -1 : 1);
        }
      });
    }

    // A large trace's rows carry their details' address instead of the
    // details (data-lazy): opening one fetches the panel once. Without
    // JavaScript the placeholder is a link to the same panel as a page.
    list.addEventListener("toggle", function (ev) {
      var d = ev.target;
      if (!d.open) return;
      var lazy = d.querySelector("[data-lazy]");
      if (!lazy || lazy.getAttribute("data-loading")) return;
      lazy.setAttribute("data-loading", "true");
      fetch(lazy.getAttribute("data-lazy"), { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (html) {
          lazy.outerHTML = html;
        })
        .catch(function (err) {
          lazy.removeAttribute("data-loading");
          lazy.insertAdjacentText("beforeend", " (could not load: " + err.message + ")");
        });
    }, true);

    var focus = wf.getAttribute("data-focus");
    if (focus) {
      var el = document.getElementById("span-" + focus);
      if (el) el.scrollIntoView({ block: "center" });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
})();
