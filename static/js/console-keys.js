/* Owner console: the kill-switch confirmation, from the keyboard. Plain JS, no framework.
 *
 * Asking to switch opens a confirmation inside the row (htmx swaps it in; without
 * JavaScript the page comes back with it). Its confirm button takes the focus, so
 * Enter confirms; Escape, or Cancel, closes it and puts the focus back on the reason.
 */
(function () {
  "use strict";

  function slotOf(el) {
    return el && el.closest ? el.closest(".confirm-slot") : null;
  }

  function cancel(slot) {
    var row = slot.parentElement;
    slot.innerHTML = "";
    var reason = row && row.querySelector('input[name="change_reason"]');
    if (reason) reason.focus();
  }

  function focusConfirm(scope) {
    var button = scope.querySelector("[data-switch-confirm-button]");
    var invalid = scope.querySelector("[data-form-errors], [data-refused]");
    if (button) {
      button.focus();
    } else if (invalid) {
      var reason = slotOf(invalid).parentElement.querySelector('input[name="change_reason"]');
      if (reason) reason.focus();
    }
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.target;
    if (target && target.classList && target.classList.contains("confirm-slot")) {
      focusConfirm(target);
    }
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("[data-switch-cancel]") : null;
    var slot = slotOf(link);
    if (!link || !slot) return;
    event.preventDefault();
    cancel(slot);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    var slot = slotOf(document.activeElement) || document.querySelector(".confirm-slot:not(:empty)");
    if (!slot || !slot.querySelector("[data-switch-confirm]")) return;
    event.preventDefault();
    cancel(slot);
  });

  // Without a swap (the page came back with the confirmation), the same focus.
  document.addEventListener("DOMContentLoaded", function () {
    var open = document.querySelector(".confirm-slot [data-switch-confirm]");
    if (open) focusConfirm(open.parentElement);
  });
})();
