"""What the audit item page shows: the blind form, then what was done and the verdict form.

Plain functions over the rows `audit_item_detail` loaded; the blind form's
fields come from the intent's JSON Schema, as the reviewer's edit form does
(automations/forms.py).
"""

from dataclasses import dataclass, field

from django.http import Http404

from automations.forms import ArgumentField, argument_fields, arguments_from_form
from automations.services.reviews import REJECT_REASONS, arguments_errors
from automations.views.panels import diff_rows, payload_rows
from catalog.audit.verdicts import ISSUE_CATEGORIES, Comparison, blind_comparison
from catalog.models import AuditSampleItem

NO_ACTION = "-"  # the blind form's "it should not have acted" (not a valid intent name)


def audit_item_detail(pk: int) -> AuditSampleItem:
    """The item with its sample, stratum, run, event, review and intents; Http404 if none."""
    item = (
        AuditSampleItem.objects.select_related(
            "sample",
            "stratum",
            "run__event",
            "run__automation",
            "run__review_task__decided_by",
            "verdict_by",
            "blind_by",
        )
        .prefetch_related("run__automation__intents")
        .filter(pk=pk)
        .first()
    )
    if item is None:
        raise Http404("no such audit item")
    return item


@dataclass
class BlindForm:
    intents: list
    intent_name: str  # "" none chosen yet, NO_ACTION, or an intent's name
    fields: list[ArgumentField] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def chosen(self):
        return next((i for i in self.intents if i.name == self.intent_name), None)

    @property
    def form_errors(self) -> list[str]:
        shown = {f.error_key for f in self.fields if f.error} | {"intent"}
        return [
            f"{path}: {message}"
            for path, message in self.errors.items()
            if path not in shown and not any(path.startswith(key + ".") for key in shown)
        ]


def blind_form(item: AuditSampleItem, *, intent_name: str = "", submitted=None, errors=None):
    """The blind form: nothing of what was done, so no intent is chosen to begin with."""
    intents = list(item.run.automation.intents.all())
    if not intent_name and len(intents) == 1:
        intent_name = intents[0].name
    form = BlindForm(intents=intents, intent_name=intent_name, errors=dict(errors or {}))
    if form.chosen is not None:
        form.fields = argument_fields(
            form.chosen.arguments_schema, arguments={}, submitted=submitted, errors=form.errors
        )
    return form


def blind_submission(item: AuditSampleItem, data) -> tuple[str | None, dict | None, dict]:
    """(intent, arguments, errors) the blind form describes; intent None: no action."""
    name = data.get("intent", "")
    if name == NO_ACTION:
        return None, None, {}
    if not name:
        return None, None, {"intent": "choose the right intent, or no action"}
    chosen = next((i for i in item.run.automation.intents.all() if i.name == name), None)
    if chosen is None:
        return name, {}, {}  # the service names the intents to choose from
    arguments, errors = arguments_from_form(chosen.arguments_schema, data)
    if errors:
        errors = {**arguments_errors(chosen.arguments_schema, arguments), **errors}
    return name, arguments, errors


@dataclass
class VerdictForm:
    verdict: str
    category: str
    note: str
    errors: dict[str, str] = field(default_factory=dict)
    suggested: bool = False  # pre-filled from a blind disagreement


def verdict_form(item: AuditSampleItem, comparison: Comparison, *, submitted=None, errors=None):
    """The verdict form: what was recorded, or what the blind answer points at, or blank."""
    if submitted is not None:
        return VerdictForm(
            verdict=submitted.get("verdict", ""),
            category=submitted.get("category", ""),
            note=submitted.get("note", ""),
            errors=dict(errors or {}),
        )
    if item.verdict:
        return VerdictForm(verdict=item.verdict, category=item.category, note=item.note)
    if comparison.blind is not None and not comparison.agrees:
        changes = "; ".join(
            f"{path}: {before} → {after}" for path, before, after in diff_rows(comparison.changes)
        )
        return VerdictForm(
            verdict="issue",
            category=comparison.suggested_category,
            note=f"Blind re-review disagrees ({changes}).",
            suggested=True,
        )
    return VerdictForm(verdict="", category="", note="")


def item_neighbours(item: AuditSampleItem) -> dict:
    """The previous and next items of the sample, and where this one stands (3 queries)."""
    items = item.sample.items
    previous = items.filter(position__lt=item.position).order_by("-position").first()
    following = items.filter(position__gt=item.position).order_by("position").first()
    return {
        "previous": previous,
        "following": following,
        "number": items.filter(position__lt=item.position).count() + 1,
        "total": items.count(),
    }


def _intent_rows(intent: dict | None) -> list[tuple[str, str]]:
    arguments = (intent or {}).get("arguments")
    return payload_rows(arguments)[0] if arguments else []


def item_panel(
    item: AuditSampleItem, *, blind: BlindForm | None = None, verdict: VerdictForm | None = None
) -> dict:
    """The template context of one item's panel."""
    run = item.run
    rows, truncated = payload_rows(run.event.payload)
    context = {
        "item": item,
        "sample": item.sample,
        "run": run,
        "event": run.event,
        "payload_rows": rows,
        "payload_truncated": truncated,
        "revealed": item.revealed_at is not None,
        "no_action": NO_ACTION,
        **item_neighbours(item),
    }
    if not context["revealed"]:
        context["blind"] = blind or blind_form(item)
        return context
    comparison = blind_comparison(item)
    review = getattr(run, "review_task", None)
    context.update(
        {
            "done": comparison.done,
            "done_rows": _intent_rows(comparison.done),
            "proposal": run.proposed_intent or {},
            "proposal_rows": _intent_rows(run.proposed_intent),
            "review": review,
            "reject_reason_label": dict(REJECT_REASONS).get(
                getattr(review, "reject_reason", ""), getattr(review, "reject_reason", "")
            ),
            "flagged_verdicts": [v for v in run.verdicts if v.get("verdict") != "pass"],
            "comparison": comparison,
            "change_rows": diff_rows(comparison.changes),
            "blind_rows": _intent_rows(item.blind_intent),
            "verdict_form": verdict or verdict_form(item, comparison),
            "categories": ISSUE_CATEGORIES,
        }
    )
    return context
