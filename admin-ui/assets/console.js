// SyncChat admin console: live panels and live forms. Pages work without this script
// (forms submit, a <noscript> refresh reloads the page); with it, panels marked
// data-refresh swap in a server-rendered fragment every few seconds, and forms marked
// data-fragment recompute their results as inputs change.
(function () {
  "use strict";
  function swap(target, url) {
    return fetch(url, { credentials: "same-origin", headers: { "x-syncchat-fragment": "1" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          target.innerHTML = html;
          target.setAttribute("data-updated", String(Date.now()));
        }
      })
      .catch(function () { target.setAttribute("data-stale", "1"); });
  }
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var every = parseInt(el.getAttribute("data-every"), 10) || 3000;
    setInterval(function () { swap(el, el.getAttribute("data-refresh")); }, every);
  });
  document.querySelectorAll("form[data-fragment]").forEach(function (form) {
    var target = document.getElementById(form.getAttribute("data-target"));
    var timer = null;
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var query = new URLSearchParams(new FormData(form)).toString();
        swap(target, form.getAttribute("data-fragment") + "?" + query).then(function () {
          window.history.replaceState(null, "", form.getAttribute("action") + "?" + query);
        });
      }, 200);
    });
  });
})();
