/* Audit item keyboard shortcuts, on shortcuts.js (loaded first). Plain JS, no framework. */
(function () {
  "use strict";

  var shortcuts = window.handrailShortcuts;
  var click = shortcuts.click;
  var focus = shortcuts.focus;

  function scope() {
    return document.getElementById("audit-panel") || document;
  }

  function find(selector) {
    var el = scope().querySelector(selector);
    return el && !el.disabled ? el : null;
  }

  function onFieldKey(event, field) {
    var inIssueArea = field.closest("[data-issue-area]");
    var inBlindForm = field.closest("#blind-form");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (inIssueArea) return click(find('button[name="verdict"][value="issue"]'));
      if (inBlindForm) return click(find('button[data-action="blind"]'));
      return false;
    }
    if (event.key === "Enter" && inIssueArea && field.tagName === "SELECT") {
      return click(find('button[name="verdict"][value="issue"]'));
    }
    if (event.key === "Escape") {
      field.blur();
      return true;
    }
    return false;
  }

  function onPageKey(event) {
    switch (event.key) {
      case "c":
        return click(find('button[name="verdict"][value="compliant"]'));
      case "i":
        return focus(find("#category"));
      case "b":
        return focus(find("#blind-intent"));
      case "s":
        return click(find('button[data-action="reveal"]'));
      case "n":
        return click(find('a[data-key="next"]'));
      case "p":
        return click(find('a[data-key="previous"]'));
      case "?":
        return shortcuts.toggleHelp();
      default:
        return false;
    }
  }

  shortcuts.install("audit-panel", onFieldKey, onPageKey);
})();
