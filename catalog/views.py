"""Catalog pages: the list of automations a user may see, and one automation in full.

Both pages run a fixed number of queries whatever the size of the catalog:
counts are correlated subqueries, children are prefetched, and the history
is read with one query per tracked model.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from automations.models import Run
from automations.services.labels import labels_export
from automations.states import RunState

from .models import Automation, DoNotAutomateRule, Intent, Mode, Role, SegmentPolicy
from .secret_env import SecretEnvRefused, secret_env_value
from .selectors import (
    automations_visible_to,
    can_manage,
    count_per_automation,
    has_role,
    user_roles,
)

HISTORY_LIMIT = 20
# Bookkeeping fields that change on every save and say nothing about the configuration.
HISTORY_IGNORED_FIELDS = frozenset({"created_at", "updated_at", "position"})


def catalog_rows_for(user, *, now: datetime | None = None) -> QuerySet[Automation]:
    """The automations a user may see, annotated with segment and run counts, in one query."""
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    here = OuterRef("pk")
    live_modes = [Mode.SUGGEST, Mode.APPROVE, Mode.AUTONOMOUS]
    return (
        Automation.objects.filter(pk__in=automations_visible_to(user).values("pk"))
        .select_related("owner")
        .defer("purpose", "rollback_plan", "instructions", "rules")
        .annotate(
            segments_total=count_per_automation(SegmentPolicy.objects.filter(automation=here)),
            segments_off=count_per_automation(
                SegmentPolicy.objects.filter(automation=here, enabled=False)
            ),
            segments_live=count_per_automation(
                SegmentPolicy.objects.filter(automation=here, enabled=True, mode__in=live_modes)
            ),
            awaiting_review=count_per_automation(
                Run.objects.filter(automation=here, state=RunState.AWAITING_REVIEW)
            ),
            runs_today=count_per_automation(
                Run.objects.filter(automation=here, created_at__gte=start_of_day)
            ),
        )
        .order_by("name", "slug")
    )


def automation_status(automation: Automation) -> list[tuple[str, str]]:
    """Badges (label, css class) that say whether the automation acts; needs catalog_rows_for."""
    badges = []
    if automation.mode == Mode.SHADOW and not automation.segments_live:
        badges.append(("shadow only", "shadow"))
    elif automation.mode == Mode.SHADOW:
        badges.append((f"shadow; live in {automation.segments_live} segment(s)", "shadow"))
    else:
        badges.append(("live", "live"))
    if automation.segments_off:
        label = f"{automation.segments_off} of {automation.segments_total} segments off"
        badges.append((label, "off"))
    return badges


@login_required
def home(request):
    rows = list(catalog_rows_for(request.user))
    for automation in rows:
        automation.status_badges = automation_status(automation)
    context = {"automations": rows, "has_role": bool(user_roles(request.user))}
    return render(request, "catalog/automation_list.html", context)


@dataclass
class HistoryEntry:
    """One configuration change, ready to show: when, who, why, what."""

    when: datetime
    who: str
    reason: str
    kind: str  # "created" | "changed" | "deleted"
    subject: str
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)


def _latest_records(history_qs: QuerySet, limit: int) -> tuple[list, dict]:
    """The newest `limit` records, and each one's predecessor keyed by history_id (2 queries)."""
    previous = (
        history_qs.model.objects.filter(id=OuterRef("id"))
        .filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
        )
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )
    records = list(
        history_qs.select_related("history_user")
        .annotate(previous_history_id=Subquery(previous))
        .order_by("-history_date", "-history_id")[:limit]
    )
    wanted = [r.previous_history_id for r in records if r.previous_history_id]
    predecessors = history_qs.model.objects.in_bulk(wanted, field_name="history_id")
    return records, predecessors


def _reviewer_sets(history_ids: list[int]) -> dict[int, set[str]]:
    """Usernames of the reviewers each automation history record captured (1 query)."""
    through = Automation.history.model._meta.get_field(
        "historicalautomation_reviewers"
    ).related_model
    sets: dict[int, set[str]] = {history_id: set() for history_id in history_ids}
    rows = through.objects.filter(history_id__in=history_ids).values_list(
        "history_id", "user__username"
    )
    for history_id, username in rows:
        sets[history_id].add(username)
    return sets


def _subject(record) -> str:
    model = record.instance_type
    if model is Automation:
        return "automation"
    if model is Intent:
        return f"intent {record.name}"
    if model is SegmentPolicy:
        return f"segment {record.key}"
    return f"do-not-automate rule {record.name}"


def _shown(value) -> str:
    """A changed value as short text: JSON for structures, ∅ for nothing."""
    if value is None or value == "":
        return "∅"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def _entry(record, before, reviewers: dict[int, set[str]]) -> HistoryEntry:
    kinds = {"+": "created", "~": "changed", "-": "deleted"}
    entry = HistoryEntry(
        when=record.history_date,
        who=record.history_user.get_username() if record.history_user else "system",
        reason=record.history_change_reason or "",
        kind=kinds.get(record.history_type, record.history_type),
        subject=_subject(record),
    )
    if before is None or record.history_type != "~":
        return entry
    excluded = set(HISTORY_IGNORED_FIELDS) | {"reviewers"}
    delta = record.diff_against(before, excluded_fields=excluded)
    entry.changes = [(c.field, c.old, c.new) for c in delta.changes]
    if record.instance_type is Automation:
        old = reviewers.get(before.history_id, set())
        new = reviewers.get(record.history_id, set())
        if old != new:
            entry.changes.append(("reviewers", ", ".join(sorted(old)), ", ".join(sorted(new))))
    return entry


def configuration_history(automation: Automation, *, limit: int = HISTORY_LIMIT) -> list:
    """The last `limit` changes to the automation and its children, newest first.

    Bounded: two queries per tracked model plus one for reviewer snapshots.
    """
    sources = [
        Automation.history.filter(id=automation.pk),
        Intent.history.filter(automation_id=automation.pk),
        SegmentPolicy.history.filter(automation_id=automation.pk),
        DoNotAutomateRule.history.filter(automation_id=automation.pk),
    ]
    pairs = []
    for history_qs in sources:
        records, predecessors = _latest_records(history_qs, limit)
        pairs += [(r, predecessors.get(r.previous_history_id)) for r in records]
    pairs.sort(key=lambda pair: (pair[0].history_date, pair[0].history_id), reverse=True)
    pairs = pairs[:limit]
    automation_ids = [
        record.history_id
        for pair in pairs
        for record in pair
        if record is not None and record.instance_type is Automation
    ]
    reviewers = _reviewer_sets(automation_ids) if automation_ids else {}
    entries = [_entry(record, before, reviewers) for record, before in pairs]
    _name_owners(entries)
    for entry in entries:
        entry.changes = [(name, _shown(old), _shown(new)) for name, old, new in entry.changes]
    return entries


def _name_owners(entries: list[HistoryEntry]) -> None:
    """Show owner changes as usernames rather than ids (1 query, none if no owner changed)."""
    ids = {
        value
        for entry in entries
        for name, old, new in entry.changes
        if name == "owner"
        for value in (old, new)
        if value
    }
    if not ids:
        return
    users = get_user_model().objects.in_bulk(ids)

    def username(user_id):
        return users[user_id].get_username() if user_id in users else user_id

    for entry in entries:
        entry.changes = [
            (name, username(old), username(new)) if name == "owner" else (name, old, new)
            for name, old, new in entry.changes
        ]


def api_key_state(user, automation: Automation) -> str:
    """For admins, whether the API key variable is "set", "not set" or "refused"; else "".

    Only admins learn it: the page must not tell others which variables exist,
    and the value itself never reaches a page.
    """
    if not has_role(user, Role.ADMIN):
        return ""
    try:
        value = secret_env_value(automation.api_key_env or "OPENAI_API_KEY")
    except SecretEnvRefused:
        return "refused"
    return "set" if value else "not set"


@login_required
def automation_detail(request, slug: str):
    visible = (
        automations_visible_to(request.user)
        .select_related("owner")
        .prefetch_related("reviewers", "intents", "segments", "do_not_automate")
    )
    automation = get_object_or_404(visible, slug=slug)
    intents = list(automation.intents.all())
    for intent in intents:
        config = dict(intent.action_config or {})
        intent.action_url = config.pop("url", "")
        intent.secret_env = config.pop("secret_env", "")
        intent.other_config = config
    context = {
        "automation": automation,
        "intents": intents,
        "api_key_state": api_key_state(request.user, automation),
        "history": configuration_history(automation),
        "can_manage": can_manage(request.user, automation),
        "can_export_labels": can_export_labels(request.user, automation),
    }
    return render(request, "catalog/automation_detail.html", context)


# Label downloads: training data for the automation's model.

LABEL_FORMATS = {
    "openai-chat": ("application/jsonl; charset=utf-8", "jsonl"),
    "csv": ("text/csv; charset=utf-8", "csv"),
}
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def can_export_labels(user, automation: Automation) -> bool:
    """Owners of the automation and admins, and compliance (who read everything)."""
    return can_manage(user, automation) or has_role(user, Role.COMPLIANCE)


def _since(value: str) -> date | None:
    """`?since=YYYY-MM-DD` as a date; ValueError for anything else."""
    if not value:
        return None
    if not ISO_DATE.fullmatch(value):
        raise ValueError(value)
    return date.fromisoformat(value)


@login_required
@require_GET
def automation_labels(request, slug: str, fmt: str):
    """Stream the automation's labels as OpenAI chat JSONL or CSV (`?since=YYYY-MM-DD`)."""
    automation = get_object_or_404(automations_visible_to(request.user), slug=slug)
    if not can_export_labels(request.user, automation):
        raise PermissionDenied("only the automation's owners, admins and compliance export labels")
    try:
        since = _since(request.GET.get("since", ""))
    except ValueError:
        return HttpResponseBadRequest(
            "since must be a date written YYYY-MM-DD, e.g. ?since=2025-01-31\n",
            content_type="text/plain; charset=utf-8",
        )
    content_type, extension = LABEL_FORMATS[fmt]
    lines = labels_export(automation=automation, since=since, fmt=fmt)
    response = StreamingHttpResponse(lines, content_type=content_type)
    suffix = f"-since-{since.isoformat()}" if since else ""
    filename = f"{automation.slug}-labels{suffix}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
