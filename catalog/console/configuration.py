"""Writes of the owner console: an automation's settings and its segment policies.

Each write keeps its reason and its author in the configuration history (and
so on the trail, catalog/audit/config_trail.py). A segment policy's switch and
mode change only through switch_set and mode_set, so that a policy added,
edited or removed in the browser obeys the same rules as the command line:
promotion to autonomous needs its evidence, switching off holds for every
action not yet sent.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from catalog.governance.changes import GovernanceRefused, mode_set, switch_set
from catalog.models import Automation, Mode, SegmentPolicy
from catalog.policy import policy_lock
from catalog.selectors import can_manage


def automation_settings_save(
    *,
    automation: Automation,
    values: dict,
    reviewers: list | None,
    reason: str,
    by: AbstractBaseUser,
) -> list[str]:
    """Save the settings in `values` (and the reviewers) that differ; the names of those changed.

    One history record with the reason, or none when nothing changed. Only the
    changed columns are written, on the row as committed, so that a mode or a
    switch changed meanwhile is neither undone nor shown as changed.
    """
    _allowed(automation=automation, by=by, reason=reason)
    with transaction.atomic():
        fresh = Automation.objects.select_for_update(no_key=True).get(pk=automation.pk)
        changed = [name for name, value in values.items() if getattr(fresh, name) != value]
        if reviewers is not None and _reviewers_differ(fresh, reviewers):
            # The m2m change alone would record one history row per add and remove, without
            # the reason; the save below records the new set with it, once.
            fresh.skip_history_when_saving = True
            fresh.reviewers.set(reviewers)
            del fresh.skip_history_when_saving
            changed.append("reviewers")
        if not changed:
            return []
        for name in changed:
            if name != "reviewers":
                setattr(fresh, name, values[name])
        _stamp(fresh, by=by, reason=reason)
        fresh.save(update_fields=[*(n for n in changed if n != "reviewers"), "updated_at"])
    return changed


def segment_policy_add(
    *,
    automation: Automation,
    key: str,
    enabled: bool,
    mode: str,
    reason: str,
    by: AbstractBaseUser,
    override_evidence: bool = False,
) -> SegmentPolicy:
    """Add a policy for segment `key`, switched and moded through switch_set and mode_set."""
    _allowed(automation=automation, by=by, reason=reason)
    with transaction.atomic():
        policy_lock(automation_id=automation.pk, exclusive=True)
        if SegmentPolicy.objects.filter(automation=automation, key=key).exists():
            raise GovernanceRefused([f"segment {key} already has a policy"])
        if not enabled:
            switch_set(automation=automation, on=False, reason=reason, by=by, segment=key)
        if mode:
            mode_set(
                automation=automation,
                mode=mode,
                reason=reason,
                by=by,
                segment=key,
                override_evidence=override_evidence,
            )
        if enabled and not mode:
            policy = SegmentPolicy(automation=automation, key=key)
            _stamp(policy, by=by, reason=reason)
            policy.save()
        last = SegmentPolicy.objects.filter(automation=automation).exclude(key=key)
        position = (last.aggregate(n=Max("position"))["n"] or 0) + 1
        # Where it is listed, not configuration: history leaves positions out.
        SegmentPolicy.objects.filter(automation=automation, key=key).update(position=position)
        return SegmentPolicy.objects.get(automation=automation, key=key)


def segment_policy_edit(
    *,
    policy: SegmentPolicy,
    enabled: bool,
    mode: str,
    reason: str,
    by: AbstractBaseUser,
    override_evidence: bool = False,
) -> bool:
    """Change a policy's switch and mode; False when both were already so.

    Switching off goes first and switching on last, so no moment in between acts
    more than both the old and the new policy allow.
    """
    automation = policy.automation
    _allowed(automation=automation, by=by, reason=reason)
    where = {"automation": automation, "reason": reason, "by": by, "segment": policy.key}
    with transaction.atomic():
        policy_lock(automation_id=automation.pk, exclusive=True)
        policy = SegmentPolicy.objects.select_related("automation").get(pk=policy.pk)
        automation = policy.automation
        was_enabled, was_mode = policy.enabled, policy.mode
        if (enabled, mode) == (was_enabled, was_mode):
            return False
        if was_enabled and not enabled:
            switch_set(on=False, **where)
        if mode and mode != was_mode:
            mode_set(mode=mode, override_evidence=override_evidence, **where)
        elif was_mode and not mode:
            policy.refresh_from_db()  # as the switch left it
            _inherit(policy, automation=automation, reason=reason, by=by)
        if enabled and not was_enabled:
            switch_set(on=True, **where)
    return True


def segment_policy_remove(*, policy: SegmentPolicy, reason: str, by: AbstractBaseUser) -> None:
    """Remove a policy: its segment follows the automation again (switched on if it was off)."""
    automation = policy.automation
    _allowed(automation=automation, by=by, reason=reason)
    with transaction.atomic():
        policy_lock(automation_id=automation.pk, exclusive=True)
        policy = SegmentPolicy.objects.select_related("automation").get(pk=policy.pk)
        _refuse_silent_promotion(policy, policy.automation, doing="removing its policy")
        if not policy.enabled:
            switch_set(
                automation=policy.automation, on=True, reason=reason, by=by, segment=policy.key
            )
            policy.refresh_from_db()
        _stamp(policy, by=by, reason=reason)
        policy.delete()


def _inherit(policy: SegmentPolicy, *, automation: Automation, reason: str, by) -> None:
    """Let the segment follow the automation's mode again (never a way round the evidence)."""
    _refuse_silent_promotion(policy, automation, doing="following the automation's mode")
    policy.mode = ""
    _stamp(policy, by=by, reason=reason)
    policy.save()


def _refuse_silent_promotion(policy: SegmentPolicy, automation: Automation, *, doing: str) -> None:
    """Inheriting an autonomous automation's mode is a promotion: it goes through mode_set."""
    automation.refresh_from_db(fields=["mode"])
    if automation.mode == Mode.AUTONOMOUS and policy.mode not in ("", Mode.AUTONOMOUS):
        raise GovernanceRefused(
            [
                f"{doing} would make segment {policy.key} autonomous (the automation's mode):"
                " promote the segment to autonomous first, with its evidence"
            ]
        )


def _reviewers_differ(automation: Automation, reviewers: list) -> bool:
    current = set(automation.reviewers.values_list("pk", flat=True))
    return current != {user.pk for user in reviewers}


def _allowed(*, automation: Automation, by: AbstractBaseUser, reason: str) -> None:
    problems = []
    if not reason or not reason.strip():
        problems.append("a reason is required")
    if not can_manage(by, automation):
        problems.append(f"{by.get_username()} may not change {automation.slug}")
    if problems:
        raise GovernanceRefused(problems)


def _stamp(instance, *, by: AbstractBaseUser, reason: str) -> None:
    """The reason (the history column holds 100 characters) and the author, for the history."""
    instance._change_reason = reason if len(reason) <= 100 else reason[:99] + "…"
    instance._history_user = by
