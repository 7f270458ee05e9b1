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
