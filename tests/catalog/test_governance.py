"""Modes and kill switches (contracts section 6): evidence, readiness, overrides, demotion."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from automations.models import ReviewTask
from catalog.governance.changes import GovernanceRefused, mode_set, switch_set
from catalog.governance.demotion import demote_segments
from catalog.governance.evidence import promotion_evidence
from catalog.governance.readiness import readiness_checklist
from catalog.history import configuration_history
from catalog.loader import dump_catalog
from catalog.models import Automation, GovernanceChange, SegmentPolicy, TrailEntry
from tests.factories import AutomationFactory, EventFactory, ReviewTaskFactory, UserFactory
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret, verify

pytestmark = pytest.mark.django_db

READY = {
    "success_metrics": "Override rate under 5 %, median handling time under 2 minutes.",
    "rollback_plan": "Set mode to approve; agents route by hand.",
    "monitoring_plan": "Support ops watch the dashboard daily.",
    "labeling_budget": "4 h/week of senior agents",
    "on_call": "support-ops rotation",
    "min_confidence": 0.7,
}


@pytest.fixture
def olivia():
    return UserFactory(username="olivia", roles=["owner"])


@pytest.fixture
def ada():
    return UserFactory(username="ada", roles=["admin"])


def ready_automation(owner, **overrides) -> Automation:
    automation = AutomationFactory(slug="support-triage", owner=owner, mode="approve")
    for name, value in {**READY, **overrides}.items():
        setattr(automation, name, value)
    automation.save()
    return automation


def reviewed(automation, count: int, *, overridden: int = 0, segment: str = "", days_ago=1):
    """`count` decided review tasks, the first `overridden` of them edited."""
    decided_at = timezone.now() - timedelta(days=days_ago)
    for n in range(count):
        ReviewTaskFactory(
            run__event=EventFactory(automation=automation, segment=segment),
            run__state="executed",
            state="done",
            outcome="edited" if n < overridden else "accepted",
            decided_at=decided_at - timedelta(seconds=n),
        )


def drilled(automation, owner) -> None:
    """The kill switch exercised: off, then on again."""
    switch_set(automation=automation, on=False, reason="drill", by=owner, segment="drill")
    switch_set(automation=automation, on=True, reason="drill over", by=owner, segment="drill")


def set_mode(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("set_mode", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_promotion_without_evidence_or_checklist_is_refused_with_one_line_each(olivia):
    automation = AutomationFactory(slug="support-triage", owner=olivia, mode="approve")

    code, out, err = set_mode("support-triage", "autonomous", "--reason", "ready", "--by", "olivia")

    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[0] == "evidence: 0 reviewed cases in the last 14 days, 200 needed"
    assert any(line.startswith("readiness: success metrics written") for line in lines)
    assert any(line.startswith("readiness: kill switch exercised") for line in lines)
    assert len(lines) == 1 + 1 + sum(not item.done for item in readiness_checklist(automation))
    assert Automation.objects.get(pk=automation.pk).mode == "approve"
    assert not GovernanceChange.objects.filter(kind="mode").exists()


@pytest.mark.parametrize(("overridden", "allowed"), [(3, True), (4, False)])
def test_the_override_rate_upper_bound_decides_at_its_edge(olivia, overridden, allowed):
    # 3 of 200: Wilson upper bound 4.3 %; 4 of 200: 5.03 %, over the 5 % allowed.
    automation = ready_automation(olivia)
    reviewed(automation, 200, overridden=overridden)
    drilled(automation, olivia)

    evidence = promotion_evidence(automation)

    assert (evidence.reviewed, evidence.overridden) == (200, overridden)
    assert (evidence.missing() == []) is allowed
    if allowed:
        change = mode_set(automation=automation, mode="autonomous", reason="evidence in", by=olivia)
        assert (change.from_value, change.to_value, change.override) == (
            "approve",
            "autonomous",
            False,
        )
    else:
        with pytest.raises(GovernanceRefused) as refused:
            mode_set(automation=automation, mode="autonomous", reason="evidence in", by=olivia)
        assert refused.value.lines == [
            "evidence: the override rate's upper bound is 5.0% (4 of 200), at most 5.0% needed"
        ]


def test_reviews_outside_the_window_do_not_count(olivia):
    automation = ready_automation(olivia)
    reviewed(automation, 200, days_ago=15)

    assert promotion_evidence(automation).reviewed == 0


def test_an_admin_may_override_with_a_reason_marked_as_such(olivia, ada):
    automation = AutomationFactory(slug="support-triage", owner=olivia, mode="approve")

    code, out, _ = set_mode(
        "support-triage",
        "autonomous",
        "--reason",
        "regulator asked for the pilot",
        "--by",
        "ada",
        "--override-evidence",
    )

    assert code == 0
    assert out.strip() == "support-triage: mode approve -> autonomous (evidence overridden)"
    change = GovernanceChange.objects.get(kind="mode")
    assert (change.override, change.by, change.reason) == (
        True,
        ada,
        "regulator asked for the pilot",
    )
    entry = TrailEntry.objects.get(kind="mode")
    assert (entry.data["override"], entry.data["by"]) == (True, "ada")
    history = automation.history.first()
    assert (history.mode, history.history_change_reason) == (
        "autonomous",
        "regulator asked for the pilot",
    )


def test_an_owner_may_not_override_the_evidence(olivia):
    AutomationFactory(slug="support-triage", owner=olivia, mode="approve")

    code, _, err = set_mode(
        "support-triage", "autonomous", "--reason", "x", "--by", "olivia", "--override-evidence"
    )

    assert code == 1
    assert err.strip() == "only an admin may promote without the evidence"


def test_demotion_is_never_refused_and_may_target_one_segment(olivia):
    automation = AutomationFactory(slug="support-triage", owner=olivia, mode="autonomous")

    code, out, _ = set_mode(
        "support-triage", "approve", "--segment", "enterprise", "--reason", "odd", "--by", "olivia"
    )

    assert code == 0 and out.strip() == "support-triage/enterprise: mode autonomous -> approve"
    policy = SegmentPolicy.objects.get(automation=automation, key="enterprise")
    assert (policy.mode, policy.enabled) == ("approve", True)
    assert Automation.objects.get(pk=automation.pk).mode == "autonomous"


def test_a_reason_and_the_right_to_manage_are_required(olivia):
    automation = AutomationFactory(slug="support-triage", owner=olivia, mode="approve")
    stranger = UserFactory(username="oscar", roles=["owner"])

    with pytest.raises(GovernanceRefused) as refused:
        mode_set(automation=automation, mode="shadow", reason="  ", by=stranger)

    assert refused.value.lines == ["a reason is required", "oscar may not change support-triage"]


def test_unknown_automation_user_or_bad_segment_is_a_clear_error(olivia):
    AutomationFactory(slug="support-triage", owner=olivia)
    with pytest.raises(CommandError, match="no automation nope"):
        call_command("set_mode", "nope", "approve", "--reason", "x")
    with pytest.raises(CommandError, match='no user named "ghost"'):
        call_command("set_mode", "support-triage", "approve", "--reason", "x", "--by", "ghost")
    with pytest.raises(CommandError, match="--segment 'Bad Key'"):
        call_command(
            "set_switch", "support-triage", "--off", "--reason", "x", "--segment", "Bad Key"
        )


def test_switches_turn_off_and_on_and_dump_shows_them(olivia):
    automation = AutomationFactory(slug="support-triage", owner=olivia)
    out = io.StringIO()

    call_command(
        "set_switch", "support-triage", "--off", "--reason", "incident", "--by", "olivia",
        stdout=out,
    )  # fmt: skip
    call_command(
        "set_switch", "support-triage", "--off", "--segment", "trial", "--reason", "abuse",
        stdout=out,
    )  # fmt: skip

    assert out.getvalue().splitlines() == [
        "support-triage: switched off (was on)",
        "support-triage/trial: switched off (was on)",
    ]
    [dumped] = dump_catalog()["automations"]
    assert dumped["enabled"] is False
    assert {"key": "trial", "enabled": False} in dumped["segments"]
    assert [e.data["to"] for e in TrailEntry.objects.filter(kind="switch").order_by("id")] == [
        "off",
        "off",
    ]

    switch_set(automation=automation, on=True, reason="incident over", by=olivia)
    assert Automation.objects.get(pk=automation.pk).enabled is True


@pytest.fixture
def notified(monkeypatch):
    monkeypatch.setenv("TEST_NOTIFY_SECRET", secret := new_webhook_secret())
    with WebhookReceiver() as receiver:
        yield receiver, secret


@pytest.mark.parametrize(("overridden", "demoted"), [(10, False), (11, True)])
def test_a_segment_is_demoted_just_above_its_threshold_and_its_owner_told(
    olivia, notified, overridden, demoted
):
    receiver, secret = notified
    automation = AutomationFactory(
        slug="support-triage",
        owner=olivia,
        mode="autonomous",
        auto_demote=True,
        auto_demote_after=50,
        auto_demote_over=0.2,
        notify_url=receiver.url("/hooks/governance"),
        notify_secret_env="TEST_NOTIFY_SECRET",
    )
    reviewed(automation, 50, overridden=overridden, segment="enterprise")
    reviewed(automation, 50, overridden=30, segment="smb", days_ago=40)  # too long ago

    demotions = demote_segments()

    assert [d.change.segment for d in demotions] == (["enterprise"] if demoted else [])
    policy = SegmentPolicy.objects.filter(automation=automation, key="enterprise").first()
    assert (policy.mode if policy else "") == ("approve" if demoted else "")
    if demoted:
        change = demotions[0].change
        assert change.by is None and change.reason.startswith(
            "automatic demotion of segment enterprise: 11 of the last 50"
        )
        [message] = receiver.wait_for(1)
        body = verify(message, secret)
        assert (body["event"], body["segment"], body["override_rate"]) == (
            "segment_demoted",
            "enterprise",
            0.22,
        )
    else:
        assert receiver.deliveries == []


def test_only_segments_acting_on_their_own_are_demoted(olivia):
    automation = AutomationFactory(owner=olivia, mode="approve", auto_demote=True)
    reviewed(automation, 50, overridden=50, segment="enterprise")

    assert demote_segments() == []
    assert ReviewTask.objects.count() == 50


def test_a_mode_or_switch_change_records_the_automation_as_committed_not_as_loaded(olivia):
    # The automatic demotion, the command line and the pages load an automation, then change
    # its mode or switch: an edit committed in between must neither be undone in the history
    # nor shown as changed back by the mode change.
    automation = AutomationFactory(slug="support-triage", owner=olivia, min_confidence=0.7)
    loaded_earlier = Automation.objects.get(pk=automation.pk)
    automation.min_confidence = 0.9
    automation._change_reason = "tune"
    automation.save()

    mode_set(automation=loaded_earlier, mode="shadow", reason="bad week", by=olivia)
    switch_set(automation=loaded_earlier, on=False, reason="incident", by=olivia)

    entries = configuration_history(automation)
    assert [(e.reason, e.changes) for e in entries[:3]] == [
        ("incident", [("enabled", "True", "False")]),
        ("bad week", [("mode", "approve", "shadow")]),
        ("tune", [("min_confidence", "0.7", "0.9")]),
    ]
    latest = TrailEntry.objects.filter(kind="config").order_by("-id").first()
    assert latest.data["values"]["min_confidence"] == 0.9
