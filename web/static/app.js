// Switchyard: refresh the main panel in place every few seconds.
// Pages work without this file; it only saves pressing reload. The server
// answers a request carrying "HX-Request: true" with the panel fragment.
(function () {
  "use strict";
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
    busy = true;
    fetch(window.location.href, {
      headers: { "HX-Request": "true" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.text();
    }).then(function (html) {
      panel.innerHTML = html;
      panel.removeAttribute("data-refresh-failed");
    }).catch(function () {
      // Keep the last content; the marker dims it so nobody trusts stale data.
      panel.setAttribute("data-refresh-failed", "true");
    }).finally(function () {
      busy = false;
    });
  }
  window.setInterval(refresh, every);
})();
