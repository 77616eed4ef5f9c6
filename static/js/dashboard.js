// Dashboard: copy buttons, the filter form's URL, the filters folded on a phone, the
// project switcher's menu. Everything works without this file.
(function () {
  "use strict";
  var SMALL_SCREEN = "(max-width: 40rem)";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var source = document.querySelector(button.getAttribute("data-copy"));
      var status = button.parentElement.querySelector(".copy-status");
      navigator.clipboard.writeText(source.textContent.trim()).then(
        function () { if (status) status.textContent = "Copied."; },
        function () { if (status) status.textContent = "Copy failed: select the text instead."; }
      );
    }
    // A click anywhere else closes the project menu, as a menu does.
    document.querySelectorAll("details.switcher[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var menu = event.target.closest && event.target.closest("details.switcher[open]");
    if (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    }
  });

  // The filter form's query, as the server writes its links (dashboard/filters.py):
  // a form's encoding (URLSearchParams), no empty parameters, the dates only for
  // "Between dates…". The form keeps working without this: the server then drops the
  // empty ones with a redirect.
  function filterQuery(form) {
    var custom = form.elements.created && form.elements.created.value === "custom";
    var query = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (typeof value !== "string" || !value.trim()) return;
      if (!custom && (name === "from" || name === "to")) return;
      query.append(name, value);
    });
    return query.toString();
  }

  // htmx submits the boosted form: give it the whole URL and no parameters of its own.
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("filters")) return;
    var query = filterQuery(form);
    var parameters = event.detail.parameters;
    Object.keys(parameters).forEach(function (name) { delete parameters[name]; });
    event.detail.path = form.getAttribute("action") + (query ? "?" + query : "");
  });

  // On a phone the filters start folded while none is active: the tokens come first.
  function foldFilters(root) {
    var panels = root.querySelectorAll ? root.querySelectorAll("details.filters-panel") : [];
    panels.forEach(function (panel) {
      if (panel.hasAttribute("data-folded")) return;  // once per page: then the user decides
      panel.setAttribute("data-folded", "");
      if (window.matchMedia(SMALL_SCREEN).matches && panel.getAttribute("data-active") === "0") {
        panel.removeAttribute("open");
      }
    });
  }
  foldFilters(document);
  document.addEventListener("htmx:load", function (event) { foldFilters(event.target); });
})();
