"""Changing an automation's mode or kill switch, for the whole of it or one segment.

The same rules hold in the browser, on the command line and for the automatic
demotion (contracts section 6): a reason is required; promoting to autonomous
needs its evidence and a complete readiness checklist unless an admin
overrides them with a written reason; demoting is never refused. Each change
is versioned (django-simple-history, with the reason), kept as a
GovernanceChange and appended to the trail, in one transaction holding the
automation's policy lock exclusively, so that no attempt reserved after the
change commits can miss it (catalog/policy.py).
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from catalog.audit.trail import trail_append
from catalog.governance.evidence import promotion_evidence
from catalog.governance.readiness import readiness_missing
from catalog.models import Automation, GovernanceChange, Mode, Role, SegmentPolicy
from catalog.policy import policy_lock
from catalog.selectors import can_manage, user_roles

RANK = {Mode.SHADOW: 0, Mode.SUGGEST: 1, Mode.APPROVE: 2, Mode.AUTONOMOUS: 3}


class GovernanceRefused(Exception):
    """The change was not made; `lines` say why, one problem per line."""

    def __init__(self, lines: list[str]):
        super().__init__("; ".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Where:
    """The automation, or one of its segments."""

    automation: Automation
    segment: str = ""

    def policy(self) -> SegmentPolicy | None:
        if not self.segment:
            return None
        return SegmentPolicy.objects.filter(automation=self.automation, key=self.segment).first()


def promotion_missing(automation: Automation, *, segment: str = "") -> list[str]:
    """What a promotion to autonomous lacks, one line each (evidence, then readiness)."""
    return promotion_evidence(automation, segment=segment).missing() + readiness_missing(automation)


def mode_set(
    *,
    automation: Automation,
    mode: str,
    reason: str,
    by: AbstractBaseUser | None,
    segment: str = "",
    override_evidence: bool = False,
) -> GovernanceChange:
    """Move the automation (or a segment's override) to `mode`; GovernanceRefused if it may not.

    `by` None is the system (automatic demotion) or the command line without --by.
    """
    if mode not in RANK:
        raise GovernanceRefused([f"mode must be one of {', '.join(RANK)}"])
    _check(automation=automation, by=by, reason=reason)
    where = Where(automation, segment)
    with transaction.atomic():
        policy_lock(automation_id=automation.pk, exclusive=True)
        _committed(automation)
        policy = where.policy()
        current = (policy.mode if policy else "") or automation.mode
        override = False
        if mode == Mode.AUTONOMOUS and current != Mode.AUTONOMOUS:
            missing = promotion_missing(automation, segment=segment)
            if missing and not override_evidence:
                raise GovernanceRefused(missing)
            if missing:
                if not _is_admin(by):
                    raise GovernanceRefused(["only an admin may promote without the evidence"])
                override = True
        if segment:
            policy = policy or SegmentPolicy(automation=automation, key=segment)
            policy.mode = mode
            _versioned_save(policy, by=by, reason=reason)
        else:
            automation.mode = mode
            _versioned_save(automation, by=by, reason=reason, fields=["mode"])
        return _record(where, GovernanceChange.Kind.MODE, current, mode, reason, by, override)


def switch_set(
    *,
    automation: Automation,
    on: bool,
    reason: str,
    by: AbstractBaseUser | None,
    segment: str = "",
) -> GovernanceChange:
    """Switch the automation (or one segment) on or off; off holds for everything not yet sent.

    Once this commits, no action of what was switched off is sent: undecided
    runs end blocked, approved ones halted, and cases waiting for a person stay
    in review (contracts section 6).
    """
    _check(automation=automation, by=by, reason=reason)
    where = Where(automation, segment)
    with transaction.atomic():
        policy_lock(automation_id=automation.pk, exclusive=True)
        if segment:
            policy = where.policy() or SegmentPolicy(automation=automation, key=segment)
            before = policy.enabled if policy.pk else True
            policy.enabled = on
            _versioned_save(policy, by=by, reason=reason)
        else:
            _committed(automation)
            before = automation.enabled
            automation.enabled = on
            _versioned_save(automation, by=by, reason=reason, fields=["enabled"])
        states = {True: "on", False: "off"}
        return _record(
            where, GovernanceChange.Kind.SWITCH, states[before], states[on], reason, by, False
        )


def _check(*, automation: Automation, by: AbstractBaseUser | None, reason: str) -> None:
    problems = []
    if not reason or not reason.strip():
        problems.append("a reason is required")
    if by is not None and not can_manage(by, automation):
        problems.append(f"{by.get_username()} may not change {automation.slug}")
    if problems:
        raise GovernanceRefused(problems)


def _committed(automation: Automation) -> None:
    """Reload the automation as committed, its row locked until the change commits.

    The history records every field of the instance saved: a stale one would
    show an edit committed since it was loaded as undone by this change. The
    lock is the one the save's UPDATE takes anyway, taken before the read.
    """
    automation.refresh_from_db(from_queryset=Automation.objects.select_for_update(no_key=True))


def _is_admin(user: AbstractBaseUser | None) -> bool:
    return user is not None and Role.ADMIN in user_roles(user)


def _versioned_save(instance, *, by, reason: str, fields: list[str] | None = None) -> None:
    """Save with the reason and the person in the configuration history.

    An automation saves only `fields` (and updated_at), so an edit made meanwhile is kept.
    """
    instance._change_reason = reason[:100]  # the history column's length
    if by is not None:
        instance._history_user = by
    instance.save(update_fields=[*fields, "updated_at"] if fields else None)


def _record(where: Where, kind, before: str, after: str, reason, by, override) -> GovernanceChange:
    change = GovernanceChange.objects.create(
        automation=where.automation,
        segment=where.segment,
        kind=kind,
        from_value=before,
        to_value=after,
        reason=reason,
        by=by,
        override=override,
    )
    trail_append(
        kind=kind,
        automation_id=where.automation.pk,
        data={
            "automation": where.automation.slug,
            "segment": where.segment,
            "from": before,
            "to": after,
            "reason": reason,
            "override": override,
            "by": by.get_username() if by else None,
            "at": change.created_at,
        },
    )
    return change
