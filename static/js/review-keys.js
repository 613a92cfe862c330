/* Reviewer console keyboard shortcuts. Plain JS, no framework.
 *
 * One listener on document (event delegation): panels that htmx swaps in
 * need no set-up of their own. Keys act by clicking the same buttons a mouse
 * would, so htmx (or, without it, the browser) submits the form as usual and
 * the clicked button's name=value travels with it.
 */
(function () {
  "use strict";

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || el.isContentEditable;
  }

  function panel() {
    return document.getElementById("review-panel");
  }

  function actionButton(values) {
    var scope = panel() || document;
    for (var i = 0; i < values.length; i++) {
      var button = scope.querySelector('button[name="action"][value="' + values[i] + '"]');
      if (button && !button.disabled) return button;
    }
    return null;
  }

  function click(button) {
    if (!button) return false;
    button.click();
    return true;
  }

  function focus(el) {
    if (!el) return false;
    el.focus();
    return true;
  }

  function firstArgumentField() {
    var scope = panel() || document;
    return scope.querySelector('#argument-fields [name^="arg."]') || scope.querySelector("#intent");
  }

  function toggleHelp() {
    document.documentElement.classList.toggle("show-shortcut-help");
  }

  // Keys while focus is in a form control: only these three, the rest is typing.
  function onFieldKey(event, field) {
    var inRejectArea = field.closest("[data-reject-area]");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      // In the reject area Ctrl+Enter rejects: approving from a rejection note would surprise.
      return click(actionButton(inRejectArea ? ["reject"] : ["approve", "use"]));
    }
    if (event.key === "Enter" && inRejectArea && field.tagName === "SELECT") {
      return click(actionButton(["reject"]));
    }
    if (event.key === "Escape") {
      field.blur();
      return true;
    }
    return false;
  }

  function onPageKey(event) {
    switch (event.key) {
      case "a":
        return click(actionButton(["approve", "use"]));
      case "e":
        return focus(firstArgumentField());
      case "r":
        return focus(document.getElementById("reject-reason"));
      case "d":
        return click(actionButton(["discard"]));
      case "l":
        return click(actionButton(["release"]));
      case "n":
        return click(document.querySelector('button[data-action="next"]'));
      case "?":
        toggleHelp();
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

  // A swapped-in panel takes the focus, so the next key acts on the new task at once
  // (htmx would otherwise put it back into a field with the same id, where keys are typing).
  // A panel sent back with errors puts the focus on the first field to fix instead.
  document.addEventListener("htmx:afterSettle", function (event) {
    var swapped = event.target;
    if (!swapped || swapped.id !== "review-panel") return;
    var invalid = swapped.querySelector('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus();
    } else {
      swapped.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  });
})();
