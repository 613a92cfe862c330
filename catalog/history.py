"""The configuration history of one automation and its children, ready to show.

Bounded whatever the length of the history: two queries per tracked model
(the newest records and their predecessors), one for the reviewer snapshots
and, when an owner changed, one for the owners' names.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Q, QuerySet, Subquery

from .models import Automation, DoNotAutomateRule, Intent, SegmentPolicy

HISTORY_LIMIT = 20
# Bookkeeping fields that change on every save and say nothing about the configuration.
HISTORY_IGNORED_FIELDS = frozenset({"created_at", "updated_at", "position"})


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


def configuration_history(
    automation: Automation, *, limit: int = HISTORY_LIMIT
) -> list[HistoryEntry]:
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
