/* What the keyboard consoles share (review-keys.js, audit-keys.js). Plain JS, no framework.
 *
 * handrailShortcuts.install(panelId, onFieldKey, onPageKey) puts one keydown listener
 * on document, so panels that htmx swaps in need no set-up of their own:
 * onFieldKey(event, field) runs while the focus is in a form control,
 * onPageKey(event) elsewhere (never with Ctrl or Cmd); each returns true when it
 * handled the key. Keys act by clicking the buttons and links a mouse would, so htmx
 * (or, without it, the browser) does the rest and the clicked button's name=value
 * travels with its form.
 */
window.handrailShortcuts = (function () {
  "use strict";

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || el.isContentEditable;
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

  function toggleHelp() {
    document.documentElement.classList.toggle("show-shortcut-help");
    return true;
  }

  function install(panelId, onFieldKey, onPageKey) {
    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.altKey || event.isComposing) return;
      var target = event.target;
      var handled = isTyping(target)
        ? onFieldKey(event, target)
        : !event.ctrlKey && !event.metaKey && onPageKey(event);
      if (handled) event.preventDefault();
    });

    // A swapped-in panel takes the focus, so the next key acts on its new case at once
    // (htmx would otherwise put it back into a field with the same id, where keys are
    // typing). A panel sent back with errors puts the focus on the first field to fix.
    document.addEventListener("htmx:afterSettle", function (event) {
      var swapped = event.target;
      if (!swapped || swapped.id !== panelId) return;
      var invalid = swapped.querySelector('[aria-invalid="true"]');
      if (invalid) {
        invalid.focus();
      } else {
        swapped.focus({ preventScroll: true });
        window.scrollTo(0, 0);
      }
    });
  }

  return { isTyping: isTyping, click: click, focus: focus, toggleHelp: toggleHelp, install: install };
})();
