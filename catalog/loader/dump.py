"""The catalog as a document in the file format that load_catalog reads."""

from catalog.loader.validate import GOVERNANCE_FIELDS
from catalog.models import Automation


def dump_catalog() -> dict:
    """Every automation in the file format; loading the result changes nothing."""
    automations = (
        Automation.objects.select_related("owner")
        .prefetch_related("reviewers", "intents", "segments", "do_not_automate")
        .order_by("slug")
    )
    return {"automations": [automation_document(a) for a in automations]}


def automation_document(automation: Automation) -> dict:
    return draft_document(
        automation,
        owner=automation.owner.get_username(),
        reviewers=[user.get_username() for user in automation.reviewers.all()],
        intents=automation.intents.all(),
        segments=automation.segments.all(),
        do_not_automate=automation.do_not_automate.all(),
    )


def draft_document(
    automation: Automation, *, owner: str, reviewers, intents, segments, do_not_automate
) -> dict:
    """The automation in the file format with the people and children given, saved or not."""
    return {
        "slug": automation.slug,
        "name": automation.name,
        "owner": owner,
        "reviewers": sorted(reviewers),
        "purpose": automation.purpose,
        "rollback_plan": automation.rollback_plan,
        "risk_tier": automation.risk_tier,
        "data_classification": automation.data_classification,
        "mode": automation.mode,
        "min_confidence": automation.min_confidence,
        "latency_budget_ms": automation.latency_budget_ms,
        "daily_budget_usd": float(automation.daily_budget_usd),
        "audit_sample_rate": automation.audit_sample_rate,
        "review_sla_minutes": automation.review_sla_minutes,
        "enabled": automation.enabled,
        "reviewer_hourly_usd": float(automation.reviewer_hourly_usd),
        "manual_minutes_per_case": automation.manual_minutes_per_case,
        **governance_document(automation),
        "decision": decision_document(automation),
        "intents": [intent_document(intent) for intent in intents],
        "segments": [segment_document(segment) for segment in segments],
        "do_not_automate": [rule_document(rule) for rule in do_not_automate],
    }


def governance_document(automation: Automation) -> dict:
    """The readiness and governance settings that differ from their defaults (extensions)."""
    names = [*GOVERNANCE_FIELDS, "auto_demote_over"]
    defaults = {name: Automation._meta.get_field(name).get_default() for name in names}
    return {
        name: getattr(automation, name)
        for name in names
        if getattr(automation, name) != defaults[name]
    }


def decision_document(automation: Automation) -> dict:
    document = {"provider": automation.provider}
    # Empty settings are left out: an empty base_url or api_key_env means "not set".
    for name in ("model", "base_url", "api_key_env", "instructions"):
        if getattr(automation, name):
            document[name] = getattr(automation, name)
    document["rules"] = automation.rules
    return document


def intent_document(intent) -> dict:
    document = {"name": intent.name}
    if intent.description:
        document["description"] = intent.description
    document["risk"] = intent.risk
    document["arguments_schema"] = intent.arguments_schema
    if intent.action_adapter or intent.action_config:
        # Settings without an adapter are shown (and refused), not silently dropped.
        document["action"] = {"adapter": intent.action_adapter, **intent.action_config}
    return document


def segment_document(segment) -> dict:
    document = {"key": segment.key, "enabled": segment.enabled}
    if segment.mode:
        document["mode"] = segment.mode
    return document


def rule_document(rule) -> dict:
    return {
        "name": rule.name,
        "field": rule.field,
        rule.operator: rule.value,
        "effect": rule.effect,
    }
