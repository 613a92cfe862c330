"""The owner console's pages: settings, segment policies, modes, kill switches, history.

Views check access (catalog/console/access.py), validate a form, call one
service and redirect (303) or render the form again with what is wrong (422)
or why the change was refused (409). Every page works without JavaScript;
with htmx, a kill switch's confirmation opens inside its row.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.console.access import automation_managed, automation_seen
from catalog.console.configuration import (
    automation_settings_save,
    segment_policy_add,
    segment_policy_edit,
    segment_policy_remove,
)
from catalog.console.forms import ModeForm, ReasonForm, SegmentForm, SettingsForm, SwitchForm
from catalog.console.rows import mode_rows, switch_rows
from catalog.governance.changes import GovernanceRefused, mode_set, switch_set
from catalog.governance.readiness import readiness_checklist
from catalog.history import configuration_history
from catalog.models import Role, SegmentPolicy
from catalog.selectors import InFlight, can_manage, has_role, runs_in_flight

HISTORY_PAGE_LIMIT = 200


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303  # after a POST: GET the page again
    return response


def _page(name: str, automation) -> str:
    return reverse(name, args=[automation.slug])


def _common(request, automation, here: str) -> dict:
    return {
        "automation": automation,
        "here": here,
        "is_admin": has_role(request.user, Role.ADMIN),
        "can_manage": can_manage(request.user, automation),
    }


def _submit(form, write) -> tuple[int, object]:
    """Validate `form`, then `write(cleaned_data)`: (200, what it returned) once written.

    422 when the form is invalid; 409 when the change is refused, its lines then
    the form's errors.
    """
    if not form.is_valid():
        return 422, None
    try:
        return 200, write(form.cleaned_data)
    except GovernanceRefused as refusal:
        for line in refusal.lines:
            form.add_error(None, line)
        return 409, None


# Settings.


@login_required
@require_http_methods(["GET", "POST"])
def automation_settings(request, slug: str):
    automation = automation_managed(request.user, slug)
    form = SettingsForm(request.POST or None, instance=automation)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                changed = automation_settings_save(
                    automation=automation,
                    values=form.values(),
                    reviewers=list(form.cleaned_data["reviewers"]),
                    reason=form.cleaned_data["change_reason"],
                    by=request.user,
                )
            except GovernanceRefused as refusal:
                for line in refusal.lines:
                    form.add_error(None, line)
            else:
                note = f"Saved: {', '.join(changed)}." if changed else "Nothing changed."
                messages.success(request, note)
                return _see_other(_page("automation_settings", automation))
    context = {**_common(request, automation, "settings"), "form": form}
    return render(request, "catalog/console/settings.html", context, status=status)


# Segment policies.


@login_required
@require_http_methods(["GET", "POST"])
def automation_segments(request, slug: str):
    """The segment policies, and the form that adds one."""
    automation = automation_managed(request.user, slug)
    form = SegmentForm(request.POST or None, automation=automation, initial={"enabled": True})
    status = 200
    if request.method == "POST":
        status, policy = _submit(
            form,
            lambda data: segment_policy_add(
                automation=automation,
                key=data["key"],
                enabled=data["enabled"],
                mode=data["mode"],
                reason=data["change_reason"],
                by=request.user,
                override_evidence=data["override_evidence"],
            ),
        )
        if status == 200:
            messages.success(request, f"Added the policy of segment {policy.key}.")
            return _see_other(_page("automation_segments", automation))
    context = {
        **_common(request, automation, "segments"),
        "form": form,
        "policies": automation.segments.all(),
    }
    return render(request, "catalog/console/segments.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def automation_segment(request, slug: str, key: str):
    """One segment policy: its switch and mode, and its removal."""
    automation = automation_managed(request.user, slug)
    policy = get_object_or_404(SegmentPolicy, automation=automation, key=key)
    initial = {"enabled": policy.enabled, "mode": policy.mode}
    form = SegmentForm(request.POST or None, automation=automation, policy=policy, initial=initial)
    status = 200
    if request.method == "POST":
        status, changed = _submit(
            form,
            lambda data: segment_policy_edit(
                policy=policy,
                enabled=data["enabled"],
                mode=data["mode"],
                reason=data["change_reason"],
                by=request.user,
                override_evidence=data["override_evidence"],
            ),
        )
        if status == 200:
            note = f"Saved segment {key}." if changed else f"Segment {key} was already so."
            messages.success(request, note)
            return _see_other(_page("automation_segments", automation))
    return _segment_page(request, automation, policy, form, ReasonForm(prefix="remove"), status)


@login_required
@require_POST
def automation_segment_remove(request, slug: str, key: str):
    automation = automation_managed(request.user, slug)
    policy = get_object_or_404(SegmentPolicy, automation=automation, key=key)
    form = ReasonForm(request.POST, prefix="remove")
    status, _ = _submit(
        form,
        lambda data: segment_policy_remove(
            policy=policy, reason=data["change_reason"], by=request.user
        ),
    )
    if status == 200:
        messages.success(request, f"Removed the policy of segment {key}.")
        return _see_other(_page("automation_segments", automation))
    initial = {"enabled": policy.enabled, "mode": policy.mode}
    edit = SegmentForm(automation=automation, policy=policy, initial=initial)
    return _segment_page(request, automation, policy, edit, form, status)


def _segment_page(request, automation, policy, form, remove_form, status: int):
    context = {
        **_common(request, automation, "segments"),
        "policy": policy,
        "form": form,
        "remove_form": remove_form,
    }
    return render(request, "catalog/console/segment.html", context, status=status)


# Modes.


@login_required
@require_http_methods(["GET", "POST"])
def automation_modes(request, slug: str):
    """Each mode with the evidence a promotion needs; promote, override (admins), demote."""
    automation = automation_managed(request.user, slug)
    form, refused, status = None, [], 200
    if request.method == "POST":
        form = ModeForm(request.POST, automation=automation)
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                change = mode_set(
                    automation=automation,
                    mode=data["mode"],
                    reason=data["change_reason"],
                    by=request.user,
                    segment=data["segment"],
                    override_evidence=data["override_evidence"],
                )
            except GovernanceRefused as refusal:
                refused, status = refusal.lines, 409
            else:
                where = f"Segment {change.segment}" if change.segment else automation.name
                note = " (evidence overridden)" if change.override else ""
                messages.success(
                    request, f"{where}: mode {change.from_value} → {change.to_value}{note}."
                )
                return _see_other(_page("automation_modes", automation))
    rows = mode_rows(automation)
    context = {
        **_common(request, automation, "modes"),
        "rows": rows,
        "readiness": readiness_checklist(automation),
        "posted": form,
        "posted_slot": _slot(form, rows),
        "refused": refused,
    }
    return render(request, "catalog/console/modes.html", context, status=status)


# Kill switches.


@login_required
@require_http_methods(["GET", "POST"])
def automation_switches(request, slug: str):
    """Each kill switch; a change is asked for, confirmed, then made (never in one step)."""
    automation = automation_managed(request.user, slug)
    form, refused, status = None, [], 200
    if request.method == "POST":
        form = SwitchForm(request.POST, automation=automation)
        status = 422
        if form.is_valid() and form.cleaned_data["confirmed"]:
            data = form.cleaned_data
            try:
                change = switch_set(
                    automation=automation,
                    on=form.on,
                    reason=data["change_reason"],
                    by=request.user,
                    segment=data["segment"],
                )
            except GovernanceRefused as refusal:
                refused, status = refusal.lines, 409
            else:
                where = f"Segment {change.segment}" if change.segment else automation.name
                messages.success(request, f"{where}: switched {change.to_value}.")
                return _see_other(_page("automation_switches", automation))
        elif form.is_valid():
            status = 200  # not confirmed yet: ask
    rows = switch_rows(automation)
    slot = _slot(form, rows)
    context = {
        **_common(request, automation, "switches"),
        "rows": rows,
        "posted": form,
        "posted_slot": slot,
        "refused": refused,
        "in_flight": _in_flight(automation, form, rows, slot),
    }
    if form is not None and request.htmx and not request.htmx.history_restore_request:
        return render(request, "catalog/console/_switch_confirm.html", context, status=status)
    return render(request, "catalog/console/switches.html", context, status=status)


def _in_flight(automation, form, rows, slot: str) -> InFlight | None:
    """What the posted change would meet: its row's runs, or a new segment's."""
    if form is None or not form.is_valid():
        return None
    row = next((r for r in rows if r.slot == slot), None)
    if row is not None:
        return row.in_flight
    return runs_in_flight(automation)[1].get(form.cleaned_data["segment"], InFlight())


def _slot(form, rows) -> str:
    """Which row a posted form belongs to ("other": a segment without a policy yet)."""
    if form is None:
        return ""
    segment = form.data.get("segment", "")
    row = next((r for r in rows if r.segment == segment), None)
    return row.slot if row is not None else "other"


# History.


@login_required
@require_GET
def automation_history(request, slug: str):
    """Every change of the automation and its children, field by field: who, when, why."""
    automation = automation_seen(request.user, slug)
    history = configuration_history(automation, limit=HISTORY_PAGE_LIMIT)
    context = {
        **_common(request, automation, "history"),
        "history": history,
        "limit": HISTORY_PAGE_LIMIT,
    }
    return render(request, "catalog/console/history.html", context)
