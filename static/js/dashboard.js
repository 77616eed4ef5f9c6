// Dashboard: copy buttons and local times. Everything works without this file.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentElement.querySelector(".copy-status");
    navigator.clipboard.writeText(source.textContent.trim()).then(
      function () { if (status) status.textContent = "Copied."; },
      function () { if (status) status.textContent = "Copy failed: select the text instead."; }
    );
  });
})();
