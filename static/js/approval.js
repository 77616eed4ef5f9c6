// Approval page: live countdown and local times. The page works without this file.
(function () {
  "use strict";

  function remaining(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (s === 0) return "due now";
    if (d) return "in " + d + " d " + h + " h";
    if (h) return "in " + h + " h " + m + " min";
    if (m) return "in " + m + " min " + sec + " s";
    return "in " + sec + " s";
  }

  function localise(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date)) {
        el.title = el.textContent;
        el.textContent = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      }
    });
  }

  var announced = false;
  function tick() {
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = new Date(el.getAttribute("data-deadline")) - Date.now();
      el.textContent = "(" + remaining(left) + ")";
      if (left <= 0 && !announced && window.htmx) {
        announced = true; // ask the server now instead of waiting for the next poll
        window.htmx.trigger(document.body, "waitpoint:due");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    tick();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", function (event) { localise(event.target); });
  document.addEventListener("htmx:load", function (event) { localise(event.target); });
})();
