"""The configuration history of one automation and its children, ready to show.

Bounded whatever the length of the history: two queries per tracked model
(the newest records and their predecessors), one for the reviewer snapshots
and, when an owner changed, one for the owners' names.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Q, QuerySet, Subquery

from .models import Automation, DoNotAutomateRule, GovernanceChange, Intent, SegmentPolicy

HISTORY_LIMIT = 20
# Bookkeeping fields that change on every save and say nothing about the configuration.
HISTORY_IGNORED_FIELDS = frozenset({"created_at", "updated_at", "position"})
# A mode change's history record and its GovernanceChange are written in one transaction.
OVERRIDE_MATCH_SECONDS = 5


@dataclass
class HistoryEntry:
    """One configuration change, ready to show: when, who, why, what."""

    when: datetime
    who: str
    reason: str
    kind: str  # "created" | "changed" | "deleted"
    subject: str
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    override: bool = False  # a promotion an admin made without its evidence
    segment: str | None = None  # the segment policy's key, for segment entries


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
        segment=record.key if record.instance_type is SegmentPolicy else None,
    )
    if record.history_type != "~" and record.instance_type is not Automation:
        # A child created or deleted: what it held, so that nothing about it goes unsaid.
        values = _values(record)
        created = record.history_type == "+"
        entry.changes = [(n, None, v) if created else (n, v, None) for n, v in values]
        return entry
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


def _values(record) -> list[tuple[str, Any]]:
    skipped = HISTORY_IGNORED_FIELDS | {"id", "automation"}
    fields = record.instance_type._meta.concrete_fields
    return [(f.name, getattr(record, f.attname)) for f in fields if f.name not in skipped]


def configuration_history(
    automation: Automation, *, limit: int = HISTORY_LIMIT
) -> list[HistoryEntry]:
    """The last `limit` changes to the automation and its children, newest first.

    Bounded: two queries per tracked model plus one for reviewer snapshots,
    and one for the promotions made without evidence when a mode changed.
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
    _mark_overrides(entries, automation)
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


def _mark_overrides(entries: list[HistoryEntry], automation: Automation) -> None:
    """Mark the mode changes an admin made without the evidence (1 query, none if no mode moved).

    The override lives on the GovernanceChange that mode_set wrote with the
    history record: the same place, new mode, reason and author, moments apart.
    """
    moved = [e for e in entries if any(name == "mode" for name, _, _ in e.changes)]
    if not moved:
        return
    window = timedelta(seconds=OVERRIDE_MATCH_SECONDS)
    overrides = list(
        GovernanceChange.objects.filter(
            automation=automation,
            kind=GovernanceChange.Kind.MODE,
            override=True,
            created_at__gte=min(e.when for e in moved) - window,
            created_at__lte=max(e.when for e in moved) + window,
        ).select_related("by")
    )
    for entry in moved:
        new_mode = next(new for name, _, new in entry.changes if name == "mode")
        entry.override = any(
            change.segment == (entry.segment or "")
            and change.to_value == new_mode
            and change.reason[:99] == entry.reason[:99]
            and (change.by.get_username() if change.by else "system") == entry.who
            and abs(change.created_at - entry.when) <= window
            for change in overrides
        )
