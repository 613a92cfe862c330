"""Audit verdicts and blind re-reviews: who may, what is kept, and the trail entry of each."""

import io

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from catalog.audit.arguments import sample_arguments
from catalog.audit.sampling import sample_draw
from catalog.audit.verdicts import (
    AuditInvalid,
    audit_blind_record,
    audit_reveal,
    audit_verdict_record,
    blind_comparison,
)
from catalog.models import AuditSampleItem, TrailEntry
from tests.catalog.audit_support import INSIDE, WINDOW, runs_of
from tests.factories import AutomationFactory, IntentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def items(compliance):
    """A sample of 4 runs: 2 autonomous ones (route to billing, p2) and 2 rejected ones."""
    automation = AutomationFactory(slug="support-triage")
    IntentFactory(automation=automation)
    runs_of(automation, "autonomous", 2, at=INSIDE)
    runs_of(automation, "rejected", 2, at=INSIDE)
    arguments = sample_arguments(name="n", size="4", stratify="outcome", seed="1", **WINDOW)
    sample = sample_draw(arguments=arguments, by=compliance)
    return list(sample.items.select_related("run").order_by("position"))


def verdict(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_verdict", *args, stdout=out)
    return out.getvalue()


def test_compliance_records_a_verdict_and_the_trail_gets_an_entry(items, compliance):
    item = items[0]

    printed = verdict(str(item.pk), "issue", "--category", "wrong_intent", "--note", "No.",
                      "--by", "carla")  # fmt: skip

    assert (
        printed == f"item {item.pk} (run {item.run_id}): issue (wrong_intent), recorded by carla\n"
    )
    item.refresh_from_db()
    assert (item.verdict, item.category, item.note, item.verdict_by) == (
        "issue",
        "wrong_intent",
        "No.",
        compliance,
    )
    entry = TrailEntry.objects.get(kind="audit_verdict")
    assert entry.run_id == item.run_id and entry.automation_id == item.run.automation_id
    assert {k: entry.data[k] for k in ("kind", "item", "run", "verdict", "category", "by")} == {
        "kind": "audit_verdict",
        "item": item.pk,
        "run": item.run_id,
        "verdict": "issue",
        "category": "wrong_intent",
        "by": "carla",
    }


def test_every_verdict_is_its_own_trail_entry_and_the_item_keeps_the_last(items, admin_user):
    item = items[0]
    verdict(str(item.pk), "issue", "--category", "policy", "--by", "ada")
    verdict(str(item.pk), "compliant", "--by", "ada")

    entries = TrailEntry.objects.filter(kind="audit_verdict").order_by("id")
    assert [(e.data["verdict"], e.data["previous"]) for e in entries] == [
        ("issue", None),
        ("compliant", "issue"),
    ]
    item.refresh_from_db()
    assert (item.verdict, item.category) == ("compliant", "")


@pytest.mark.parametrize("role", ["reviewer", "owner", None])
def test_only_compliance_staff_and_admins_may_record_verdicts(items, role):
    UserFactory(username="someone", roles=[role] if role else [])
    item = items[0]

    with pytest.raises(CommandError) as caught:
        verdict(str(item.pk), "compliant", "--by", "someone")

    assert caught.value.returncode == 1
    assert "someone may not record audit verdicts: only compliance staff and admins may" in str(
        caught.value
    )
    item.refresh_from_db()
    assert item.verdict == "" and item.verdict_by is None
    assert not TrailEntry.objects.filter(kind="audit_verdict").exists()


def test_unknown_items_users_and_misplaced_categories_are_clear_errors(items, compliance):
    with pytest.raises(CommandError, match="no audit sample item 999999"):
        verdict("999999", "compliant", "--by", "carla")
    with pytest.raises(CommandError, match="--by: no user nobody"):
        verdict(str(items[0].pk), "compliant", "--by", "nobody")
    with pytest.raises(CommandError, match="--category: only an issue has a category"):
        verdict(str(items[0].pk), "compliant", "--category", "policy", "--by", "carla")
    with pytest.raises(CommandError, match="--note: say what the issue is"):
        verdict(str(items[0].pk), "issue", "--category", "other", "--by", "carla")
    assert not AuditSampleItem.objects.exclude(verdict="").exists()


def _autonomous(items):
    return next(i for i in items if i.outcome == "autonomous")


def _rejected(items):
    return next(i for i in items if i.outcome == "rejected")


def test_a_blind_answer_that_matches_what_was_done_agrees(items, compliance):
    item = _autonomous(items)

    audit_blind_record(
        item_id=item.pk,
        intent="route_ticket",
        arguments={"team": "billing", "priority": "p2"},
        by=compliance,
    )

    item.refresh_from_db()
    comparison = blind_comparison(item)
    assert comparison.agrees and comparison.changes == []
    assert item.revealed_at is not None and item.blind_by == compliance


def test_a_blind_answer_that_differs_lists_the_differences_and_points_at_a_category(
    items, compliance
):
    acted, rejected = _autonomous(items), _rejected(items)

    audit_blind_record(
        item_id=acted.pk,
        intent="route_ticket",
        arguments={"team": "technical", "priority": "p2"},
        by=compliance,
    )
    audit_blind_record(
        item_id=rejected.pk,
        intent="route_ticket",
        arguments={"team": "billing", "priority": "p1"},
        by=compliance,
    )

    acted.refresh_from_db()
    rejected.refresh_from_db()
    first, second = blind_comparison(acted), blind_comparison(rejected)
    assert not first.agrees
    assert first.changes == [{"path": "arguments.team", "from": "billing", "to": "technical"}]
    assert first.suggested_category == "wrong_arguments"
    assert second.done is None and second.suggested_category == "should_have_acted"
    # The verdict's trail entry keeps the blind answer and whether it agreed.
    audit_verdict_record(
        item_id=acted.pk, verdict="issue", category="wrong_arguments", by=compliance
    )
    entry = TrailEntry.objects.get(kind="audit_verdict")
    assert entry.data["blind"] == {
        "answer": {"intent": "route_ticket", "arguments": {"team": "technical", "priority": "p2"}},
        "agrees": False,
    }


def test_no_action_agrees_with_a_rejection(items, compliance):
    item = _rejected(items)
    audit_blind_record(item_id=item.pk, intent=None, arguments=None, by=compliance)
    item.refresh_from_db()
    assert blind_comparison(item).agrees


def test_a_blind_answer_must_fit_the_schema_and_come_before_the_reveal(items, compliance):
    item = _autonomous(items)
    with pytest.raises(AuditInvalid) as caught:
        audit_blind_record(
            item_id=item.pk, intent="route_ticket", arguments={"team": "x"}, by=compliance
        )
    assert set(caught.value.errors) == {"arguments.team", "arguments.priority"}
    with pytest.raises(AuditInvalid, match="intent: choose one of route_ticket, or no action"):
        audit_blind_record(item_id=item.pk, intent="refund", arguments={}, by=compliance)
    item.refresh_from_db()
    assert item.blind_intent is None and item.revealed_at is None

    audit_reveal(item_id=item.pk, by=compliance)
    with pytest.raises(AuditInvalid, match="revealed already"):
        audit_blind_record(item_id=item.pk, intent=None, arguments=None, by=compliance)


def test_a_reviewer_may_not_review_blind_either(items, reviewer):
    with pytest.raises(PermissionDenied):
        audit_blind_record(item_id=items[0].pk, intent=None, arguments=None, by=reviewer)
    with pytest.raises(PermissionDenied):
        audit_reveal(item_id=items[0].pk, by=reviewer)


def test_nul_characters_are_refused_before_they_reach_the_database(items, compliance):
    item = _autonomous(items)
    with pytest.raises(AuditInvalid) as caught:
        audit_verdict_record(
            item_id=item.pk, verdict="issue", category="po\x00licy", note="a\x00b", by=compliance
        )
    assert caught.value.errors == {
        "category": "must not contain NUL characters",
        "note": "must not contain NUL characters",
    }
    with pytest.raises(AuditInvalid) as caught:
        audit_blind_record(
            item_id=item.pk,
            intent="route_ticket",
            arguments={"team": "bill\x00ing", "priority": "p2"},
            by=compliance,
        )
    assert caught.value.errors == {"arguments.team": "must not contain NUL characters"}
    item.refresh_from_db()
    assert (item.verdict, item.blind_intent) == ("", None)
