"""What the owner console's tests share: a loaded automation, its people, reviewed cases.

Test modules import the fixtures by their function names (`automation_fixture` ...)
and use them by their fixture names (`automation` ...).
"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.governance.changes import switch_set
from catalog.loader import dump_catalog, load_catalog
from catalog.models import Automation, DoNotAutomateRule, GovernanceChange, Intent, SegmentPolicy
from tests.factories import BILLING_RULE, ROUTE_SCHEMA, EventFactory, ReviewTaskFactory, UserFactory

HOOK = {"url": "https://hooks.example.test/route", "secret_env": "SUPPORT_WEBHOOK_SECRET"}
HISTORY_MODELS = (Automation, Intent, SegmentPolicy, DoNotAutomateRule)
READY = {
    "success_metrics": "Override rate under 5 %, median handling time under 2 minutes.",
    "monitoring_plan": "Support ops watch the dashboard daily.",
    "labeling_budget": "4 h/week of senior agents",
    "on_call": "support-ops rotation",
}


def support_triage(**overrides) -> dict:
    """The automation in the file format, as the loader takes it."""
    return {
        "slug": "support-triage",
        "name": "Support triage",
        "owner": "olivia",
        "reviewers": ["ravi"],
        "purpose": "Route tickets and draft first replies.",
        "rollback_plan": "Set mode to suggest; agents route by hand.",
        "risk_tier": "medium",
        "data_classification": "internal",
        "mode": "approve",
        "decision": {"provider": "rules", "rules": [BILLING_RULE]},
        "intents": [
            {
                "name": "route_ticket",
                "arguments_schema": ROUTE_SCHEMA,
                "action": {"adapter": "webhook", **HOOK},
            }
        ],
        "segments": [{"key": "enterprise", "mode": "approve"}, {"key": "trial"}],
        **overrides,
    }


@pytest.fixture(name="people")
def people_fixture(db):
    return {
        "olivia": UserFactory(username="olivia", roles=["owner"]),
        "oscar": UserFactory(username="oscar", roles=["owner"]),
        "ravi": UserFactory(username="ravi", roles=["reviewer"]),
        "rosa": UserFactory(username="rosa", roles=["reviewer"]),
        "carla": UserFactory(username="carla", roles=["compliance"]),
        "ada": UserFactory(username="ada", roles=["admin"]),
    }


@pytest.fixture(name="automation")
def automation_fixture(people):
    load_catalog({"automations": [support_triage()]}, source="test.yaml")
    return Automation.objects.get(slug="support-triage")


@pytest.fixture(name="login")
def login_fixture(client, people):
    def as_(name: str):
        client.force_login(people[name])
        return client

    return as_


def stored() -> str:
    """Everything the database holds about the catalog, history and governance included."""
    history = [model.history.count() for model in HISTORY_MODELS]
    changes = list(GovernanceChange.objects.order_by("pk").values())
    return json.dumps([dump_catalog(), history, changes], sort_keys=True, default=str)


def make_ready(automation: Automation, owner) -> None:
    """Complete the readiness checklist: the written items, and a kill switch exercised."""
    Automation.objects.filter(pk=automation.pk).update(**READY)
    switch_set(automation=automation, on=False, reason="drill", by=owner, segment="drill")
    switch_set(automation=automation, on=True, reason="drill over", by=owner, segment="drill")


def reviewed(automation, count: int, *, overridden: int = 0, segment: str = "") -> None:
    """`count` cases people decided yesterday, the first `overridden` of them edited."""
    decided_at = timezone.now() - timedelta(days=1)
    for n in range(count):
        ReviewTaskFactory(
            run__event=EventFactory(automation=automation, segment=segment),
            run__state="executed",
            state="done",
            outcome="edited" if n < overridden else "accepted",
            decided_at=decided_at - timedelta(seconds=n),
        )
