// Approval page: a live countdown. The page works without this file; times stay in UTC.
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
    tick();
    setInterval(tick, 1000);
  });
})();
