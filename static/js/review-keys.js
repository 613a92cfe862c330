/* Reviewer console keyboard shortcuts, on shortcuts.js (loaded first). Plain JS, no framework. */
(function () {
  "use strict";

  var shortcuts = window.handrailShortcuts;
  var click = shortcuts.click;
  var focus = shortcuts.focus;

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

  function firstArgumentField() {
    var scope = panel() || document;
    return scope.querySelector('#argument-fields [name^="arg."]') || scope.querySelector("#intent");
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
        return shortcuts.toggleHelp();
      default:
        return false;
    }
  }

  shortcuts.install("review-panel", onFieldKey, onPageKey);
})();
