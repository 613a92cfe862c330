"""Writing a validated catalog: one transaction, and only rows whose values changed."""

import json
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import models, transaction

from catalog.models import Automation, DoNotAutomateRule, Intent, SegmentPolicy

from .promotions import OVERRIDDEN, promotions_check
from .validate import catalog_validate

REASON_MAX_LENGTH = 100  # simple-history's history_change_reason column


@dataclass
class LoadReport:
    """The slugs a load created, updated and left unchanged, in file order."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        total = len(self.created) + len(self.updated) + len(self.unchanged)
        noun = "automation" if total == 1 else "automations"
        return (
            f"{total} {noun}: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


@dataclass(frozen=True)
class Change:
    """Who made a change and why, stamped on every instance saved or deleted."""

    reason: str
    user: object = None

    def stamp(self, instance: models.Model) -> models.Model:
        instance._change_reason = self.reason
        if self.user is not None:
            instance._history_user = self.user
        return instance


def load_catalog(
    document,
    *,
    source: str,
    reason: str | None = None,
    user=None,
    override_evidence: bool = False,
) -> LoadReport:
    """Validate the whole document, then apply all of it in one transaction, or nothing.

    Raises CatalogInvalid (every problem, with its path) and writes nothing if
    any part is wrong, a promotion to autonomous without its evidence included
    (unless an admin `user` overrides it). Loading the same document twice
    changes nothing and records no history the second time.
    """
    reason = reason or f"loaded from {source}"
    report = LoadReport()
    with transaction.atomic():
        specs = catalog_validate(document)
        users = users_by_name(specs)
        slugs = [spec["slug"] for spec in specs]
        current = {a.slug: a for a in Automation.objects.select_for_update().filter(slug__in=slugs)}
        if promotions_check(specs, current, user=user, override_evidence=override_evidence):
            reason = reason[: REASON_MAX_LENGTH - len(OVERRIDDEN)] + OVERRIDDEN
        change = Change(reason=reason_text(reason), user=user)
        for spec in specs:
            outcome = automation_apply(
                spec=spec, automation=current.get(spec["slug"]), users=users, change=change
            )
            getattr(report, outcome).append(spec["slug"])
    return report


def reason_text(reason: str) -> str:
    if len(reason) <= REASON_MAX_LENGTH:
        return reason
    return reason[: REASON_MAX_LENGTH - 1] + "…"


def users_by_name(specs: list[dict]) -> dict:
    user_model = get_user_model()
    names = {spec["owner"] for spec in specs}
    names.update(name for spec in specs for name in spec["reviewers"])
    lookup = {f"{user_model.USERNAME_FIELD}__in": names}
    return {user.get_username(): user for user in user_model.objects.filter(**lookup)}


def same(a, b) -> bool:
    """Equal as stored values: 1 and True, or 1 and 1.0, are different settings."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def changed_values(instance: models.Model, values: dict) -> dict:
    """The subset of `values` that differs from what `instance` holds."""
    return {name: v for name, v in values.items() if not same(getattr(instance, name), v)}


def prompt_signature(fields: dict, intents: list[dict]) -> str:
    """What the model is prompted with; prompt_version moves when this does."""
    parts = [
        fields["instructions"],
        fields["model"],
        [[i["name"], i["description"], i["arguments_schema"]] for i in intents],
    ]
    return json.dumps(parts, sort_keys=True)


def automation_apply(*, spec: dict, automation: Automation | None, users: dict, change: Change):
    """Create or update one automation and its children; returns created|updated|unchanged."""
    values = {**spec["fields"], "owner_id": users[spec["owner"]].pk}
    reviewers = [users[name] for name in spec["reviewers"]]
    if automation is None:
        automation = change.stamp(Automation(slug=spec["slug"], **values))
        automation.save()
        if reviewers:
            automation.reviewers.set(reviewers)
        children_apply(automation=automation, spec=spec, change=change)
        return "created"

    old_intents = list(automation.intents.values("name", "description", "arguments_schema"))
    if prompt_signature(values, spec["intents"]) != prompt_signature(
        {"instructions": automation.instructions, "model": automation.model}, old_intents
    ):
        values["prompt_version"] = automation.prompt_version + 1
    children_changed = children_apply(automation=automation, spec=spec, change=change)
    dirty = changed_values(automation, values)
    reviewers_changed = {u.pk for u in reviewers} != set(
        automation.reviewers.values_list("pk", flat=True)
    )
    if reviewers_changed:
        reviewers_set(automation, reviewers)
    if dirty or reviewers_changed:
        for name, value in dirty.items():
            setattr(automation, name, value)
        change.stamp(automation).save()
    return "updated" if (children_changed or dirty or reviewers_changed) else "unchanged"


def reviewers_set(automation: Automation, reviewers: list) -> None:
    """Set the reviewers without history: the save that follows records them in one row.

    (`set` removes then adds, and simple-history would record each step.)
    """
    automation.skip_history_when_saving = True
    try:
        automation.reviewers.set(reviewers)
    finally:
        del automation.skip_history_when_saving


def children_apply(*, automation: Automation, spec: dict, change: Change) -> bool:
    """Make intents, segments and do-not-automate rules match the file; True if any changed."""
    changed = False
    for model, related, key, items in (
        (Intent, automation.intents, "name", spec["intents"]),
        (SegmentPolicy, automation.segments, "key", spec["segments"]),
        (DoNotAutomateRule, automation.do_not_automate, "name", spec["do_not_automate"]),
    ):
        changed |= children_sync(
            model=model,
            automation=automation,
            existing=list(related.all()),
            key=key,
            items=items,
            change=change,
        )
    return changed


def children_sync(*, model, automation, existing: list, key: str, items: list, change: Change):
    """Delete children missing from `items`, create new ones, save only those that differ."""
    by_key = {getattr(child, key): child for child in existing}
    wanted = {item[key] for item in items}
    changed = False
    for name, child in by_key.items():
        if name not in wanted:
            change.stamp(child).delete()
            changed = True
    for position, item in enumerate(items):
        values = {**item, "position": position}
        child = by_key.get(item[key])
        if child is None:
            change.stamp(model(automation=automation, **values)).save()
            changed = True
            continue
        dirty = changed_values(child, values)
        if dirty:
            for name, value in dirty.items():
                setattr(child, name, value)
            change.stamp(child).save()
            changed = True
    return changed
