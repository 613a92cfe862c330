/* Audit item keyboard shortcuts, in the manner of review-keys.js. Plain JS, no framework.
 *
 * One listener on document: panels that htmx swaps in need no set-up. Keys act by
 * clicking the buttons and links a mouse would, so htmx (or, without it, the browser)
 * does the rest and the clicked button's name=value travels with its form.
 */
(function () {
  "use strict";

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || el.isContentEditable;
  }

  function scope() {
    return document.getElementById("audit-panel") || document;
  }

  function find(selector) {
    var el = scope().querySelector(selector);
    return el && !el.disabled ? el : null;
  }

  function click(el) {
    if (!el) return false;
    el.click();
    return true;
  }

  function focus(el) {
    if (!el) return false;
    el.focus();
    return true;
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
        document.documentElement.classList.toggle("show-shortcut-help");
        return true;
      default:
        return false;
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.isComposing) return;
    var target = event.target;
    var handled = isTyping(target)
      ? onFieldKey(event, target)
      : !event.ctrlKey && !event.metaKey && onPageKey(event);
    if (handled) event.preventDefault();
  });

  // A swapped-in panel takes the focus, so the next key acts on the new item at once;
  // one sent back with errors puts the focus on the first field to fix instead.
  document.addEventListener("htmx:afterSettle", function (event) {
    var swapped = event.target;
    if (!swapped || swapped.id !== "audit-panel") return;
    var invalid = swapped.querySelector('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus();
    } else {
      swapped.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  });
})();
