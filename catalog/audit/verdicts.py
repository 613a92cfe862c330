"""Working through a sample: the blind re-review, the reveal, and the compliance verdict.

Only compliance staff and admins may (contracts section 2). A verdict is kept
on its item and appended to the trail (kind "audit_verdict") in the same
transaction; recording another verdict later replaces it on the item, and the
trail keeps both.

The blind re-review comes first when the auditor wants it: they say which
intent and arguments were right (or that nothing should have been done)
before the item shows what was done. Once an item is revealed, by a blind
answer, by skipping it or by a verdict, it cannot be reviewed blind again.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from automations.services.reviews import arguments_errors, intent_diff
from catalog.audit.access import audit_check
from catalog.audit.trail import trail_append
from catalog.models import AuditOutcome, AuditSampleItem, AuditVerdict

ISSUE_CATEGORIES: list[tuple[str, str]] = [
    ("wrong_intent", "Wrong intent"),
    ("wrong_arguments", "Wrong arguments"),
    ("should_not_have_acted", "Should not have acted"),
    ("should_have_acted", "Should have acted"),
    ("policy", "Against policy"),
    ("personal_data", "Personal data mishandled"),
    ("other", "Other (explain in the note)"),
]
# What acted on the run's final intent; the other outcomes did nothing.
ACTED = (AuditOutcome.AUTONOMOUS, AuditOutcome.APPROVED, AuditOutcome.EDITED)
MAX_CATEGORY = 100
MAX_NOTE = 5000
NUL_MESSAGE = "must not contain NUL characters"


class AuditInvalid(ValueError):
    """The input is wrong and nothing was changed; `errors` maps each field to the problem."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def _verdict_errors(verdict: str, category: str, note: str) -> dict[str, str]:
    errors = {}
    if verdict not in AuditVerdict.values:
        errors["verdict"] = f"must be one of {', '.join(AuditVerdict.values)}"
    if category and verdict == AuditVerdict.COMPLIANT:
        errors["category"] = "only an issue has a category"
    if len(category) > MAX_CATEGORY:
        errors["category"] = f"must be at most {MAX_CATEGORY} characters"
    if verdict == AuditVerdict.ISSUE and category == "other" and not note:
        errors["note"] = "say what the issue is"
    if len(note) > MAX_NOTE:
        errors["note"] = f"must be at most {MAX_NOTE} characters"
    for field, text in (("category", category), ("note", note)):
        if "\x00" in text:
            errors[field] = NUL_MESSAGE
    return errors


def _nul_paths(value, path: str) -> list[str]:
    """Where `value` holds a NUL character (PostgreSQL stores none), as "arguments.x" paths."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if not isinstance(value, dict | list):
        return []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    return [p for key, item in items for p in _nul_paths(item, f"{path}.{key}")]


def audit_verdict_record(
    *,
    item_id: int,
    verdict: str,
    by: AbstractBaseUser,
    category: str = "",
    note: str = "",
) -> AuditSampleItem:
    """Record a verdict on an item and append it to the trail, in one transaction.

    PermissionDenied unless `by` is compliance staff or an admin;
    AuditSampleItem.DoesNotExist for an unknown item; AuditInvalid for bad input.
    """
    audit_check(by)
    category, note = (category or "").strip(), (note or "").strip()
    errors = _verdict_errors(verdict, category, note)
    if errors:
        raise AuditInvalid(errors)
    now = timezone.now()
    with transaction.atomic():
        item = (
            AuditSampleItem.objects.select_for_update(of=("self",))
            .select_related("run", "sample")
            .get(pk=item_id)
        )
        previous = item.verdict or None
        item.verdict, item.category, item.note = verdict, category, note
        item.verdict_by, item.verdict_at = by, now
        item.revealed_at = item.revealed_at or now
        item._change_reason = f"verdict {verdict} by {by.get_username()}"
        item.save()
        trail_append(
            kind="audit_verdict",
            automation_id=item.run.automation_id,
            run_id=item.run_id,
            data=_trail_data(item, previous=previous, at=now),
        )
    return item


def _trail_data(item: AuditSampleItem, *, previous: str | None, at) -> dict:
    data = {
        "sample": item.sample_id,
        "sample_name": item.sample.name,
        "item": item.pk,
        "run": item.run_id,
        "outcome": item.outcome,
        "verdict": item.verdict,
        "category": item.category,
        "note": item.note,
        "previous": previous,
        "by": item.verdict_by.get_username(),
        "at": at,
    }
    if item.blind_intent is not None:
        comparison = blind_comparison(item)
        data["blind"] = {"answer": item.blind_intent, "agrees": comparison.agrees}
    return data


def _open_item(item_id: int) -> AuditSampleItem:
    """The item, locked; AuditInvalid when it was revealed already."""
    item = (
        AuditSampleItem.objects.select_for_update(of=("self",))
        .select_related("run__automation")
        .get(pk=item_id)
    )
    if item.revealed_at is not None:
        raise AuditInvalid({"intent": "this item was revealed already: it cannot be blind now"})
    return item


def _blind_errors(item: AuditSampleItem, intent: str | None, arguments) -> dict[str, str]:
    if intent is None:
        return {}
    if "\x00" in intent:
        return {"intent": NUL_MESSAGE}
    nul = {path: NUL_MESSAGE for path in _nul_paths(arguments, "arguments")}
    if nul:
        return nul
    known = {i.name: i for i in item.run.automation.intents.all()}
    if intent not in known:
        return {"intent": f"choose one of {', '.join(known) or 'the intents'}, or no action"}
    return arguments_errors(known[intent].arguments_schema, arguments)


def audit_blind_record(
    *, item_id: int, intent: str | None, arguments: dict | None, by: AbstractBaseUser
) -> AuditSampleItem:
    """Keep the auditor's blind answer (intent None: nothing should have been done) and reveal.

    AuditInvalid when the intent or arguments do not fit the automation's
    schema, or the item was revealed already; nothing is changed then.
    """
    audit_check(by)
    with transaction.atomic():
        item = _open_item(item_id)
        errors = _blind_errors(item, intent, arguments)
        if errors:
            raise AuditInvalid(errors)
        now = timezone.now()
        item.blind_intent = {"intent": intent, "arguments": arguments if intent else None}
        item.blind_by, item.blind_at, item.revealed_at = by, now, now
        item._change_reason = f"blind re-review by {by.get_username()}"
        item.save(update_fields=["blind_intent", "blind_by", "blind_at", "revealed_at"])
    return item


def audit_reveal(*, item_id: int, by: AbstractBaseUser) -> AuditSampleItem:
    """Show what was done without a blind answer (the auditor skips the blind step)."""
    audit_check(by)
    with transaction.atomic():
        item = AuditSampleItem.objects.select_for_update(of=("self",)).get(pk=item_id)
        if item.revealed_at is None:
            item.revealed_at = timezone.now()
            item._change_reason = f"revealed by {by.get_username()}"
            item.save(update_fields=["revealed_at"])
    return item


@dataclass(frozen=True)
class Comparison:
    """The blind answer against what was done; `changes` as intent_diff lists them."""

    done: dict | None  # {"intent", "arguments"}, or None: nothing was done
    blind: dict | None  # the same shape; None: no blind answer was given
    changes: list[dict]

    @property
    def agrees(self) -> bool:
        return self.blind is not None and not self.changes

    @property
    def suggested_category(self) -> str:
        """The issue category a disagreement points at ("" when they agree)."""
        if self.blind is None or self.agrees:
            return ""
        done_intent = (self.done or {}).get("intent")
        blind_intent = self.blind.get("intent")
        if done_intent is None:
            return "should_have_acted"
        if blind_intent is None:
            return "should_not_have_acted"
        return "wrong_intent" if done_intent != blind_intent else "wrong_arguments"


def done_intent(item: AuditSampleItem) -> dict | None:
    """What the run acted on ({"intent", "arguments"}), or None when it did nothing."""
    final = item.run.final_intent
    if item.outcome not in ACTED or not final:
        return None
    return {"intent": final.get("intent"), "arguments": final.get("arguments")}


def blind_comparison(item: AuditSampleItem) -> Comparison:
    """How the item's blind answer compares with what was done."""
    done = done_intent(item)
    blind = item.blind_intent
    if blind is None:
        return Comparison(done=done, blind=None, changes=[])
    nothing = {"intent": None, "arguments": None}
    return Comparison(done=done, blind=blind, changes=intent_diff(done or nothing, blind))
