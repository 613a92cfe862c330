import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from automations.models import Label
from automations.services.labels import labels_export
from automations.services.reviews import review_claim_next, review_decide
from tests.factories import AutomationFactory, IntentFactory, ReviewTaskFactory, RunFactory

PROPOSED = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.6,
    "rationale": "Invoice question.",
}
REPLY_SCHEMA = {
    "type": "object",
    "properties": {"body": {"type": "string"}},
    "required": ["body"],
}
PAYLOAD = {"subject": "Invoice", "body": "Mail me at jane.doe@example.com please"}


@pytest.fixture(autouse=True)
def no_execution(monkeypatch):
    monkeypatch.setattr("automations.services.dispatch.enqueue_execute", lambda run_id: None)


def make_automation(slug, reviewer, classification="internal"):
    automation = AutomationFactory(
        slug=slug,
        reviewers=[reviewer],
        data_classification=classification,
        instructions="You triage customer support tickets. Pick exactly one intent.",
    )
    IntentFactory(automation=automation, name="route_ticket")
    IntentFactory(automation=automation, name="draft_reply", arguments_schema=REPLY_SCHEMA)
    return automation


def decided(automation, user, *, kind="approve", **decision):
    run = RunFactory(
        event__automation=automation,
        event__payload=PAYLOAD,
        state="awaiting_review",
        proposed_intent=PROPOSED,
    )
    task = ReviewTaskFactory(run=run, kind=kind)
    assert review_claim_next(user=user, automation=automation).pk == task.pk
    return review_decide(task_id=task.pk, user=user, **decision)


@pytest.fixture
def triage(reviewer):
    automation = make_automation("support-triage", reviewer)
    decided(automation, reviewer, action="approve")
    decided(automation, reviewer, action="approve", arguments={"team": "sales", "priority": "p1"})
    decided(automation, reviewer, action="reject", reject_reason="policy")
    decided(automation, reviewer, kind="suggest", action="discard")
    return automation


def chat_records(automation, **kwargs):
    return [
        json.loads(line)
        for line in labels_export(automation=automation, **kwargs, fmt="openai-chat")
    ]


def csv_rows(automation, **kwargs):
    text = "".join(labels_export(automation=automation, fmt="csv", **kwargs))
    return list(csv.DictReader(io.StringIO(text)))


def test_chat_export_has_system_user_and_assistant_turns_per_answered_label(triage):
    records = chat_records(triage)

    assert len(records) == 2  # the rejected and the discarded label have no answer to teach
    first = records[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[0]["content"] == triage.instructions
    assert json.loads(first[1]["content"])["payload"] == PAYLOAD
    assert json.loads(first[2]["content"]) == {
        "intent": "route_ticket",
        "arguments": {"team": "billing", "priority": "p2"},
    }
    edited = json.loads(records[1]["messages"][2]["content"])
    assert edited["arguments"] == {"team": "sales", "priority": "p1"}


def test_csv_export_has_a_header_and_every_label(triage, reviewer):
    rows = csv_rows(triage)

    assert [row["outcome"] for row in rows] == ["accepted", "edited", "rejected", "discarded"]
    assert set(rows[0]) == {
        "created_at",
        "run_id",
        "outcome",
        "reviewer",
        "model_intent",
        "final_intent",
        "diff",
    }
    assert {row["reviewer"] for row in rows} == {reviewer.username}
    assert json.loads(rows[1]["diff"]) == [
        {"path": "arguments.priority", "from": "p2", "to": "p1"},
        {"path": "arguments.team", "from": "billing", "to": "sales"},
    ]
    assert json.loads(rows[2]["final_intent"]) is None
    assert json.loads(rows[2]["model_intent"]) == PROPOSED
    assert int(rows[0]["run_id"]) == Label.objects.order_by("id").first().run_id


@pytest.mark.parametrize("classification", ["confidential", "restricted"])
def test_sensitive_automations_are_exported_with_pii_redacted(reviewer, classification):
    automation = make_automation("health-claims", reviewer, classification)
    decided(
        automation,
        reviewer,
        action="approve",
        intent="draft_reply",
        arguments={"body": "We wrote to jane.doe@example.com"},
    )

    chat = "".join(labels_export(automation=automation, fmt="openai-chat"))
    table = "".join(labels_export(automation=automation, fmt="csv"))

    for exported in (chat, table):
        assert "jane.doe@example.com" not in exported
        assert "[EMAIL]" in exported
    assert Label.objects.get().final_intent["arguments"]["body"].endswith("jane.doe@example.com")


def test_internal_automations_are_exported_as_recorded(reviewer):
    automation = make_automation("internal-only", reviewer, "internal")
    decided(automation, reviewer, action="approve")

    assert "jane.doe@example.com" in "".join(
        labels_export(automation=automation, fmt="openai-chat")
    )


def test_since_keeps_only_labels_created_from_that_day(triage):
    old = Label.objects.order_by("id").first()
    Label.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=2)).date()

    assert len(csv_rows(triage, since=since)) == 3
    assert len(csv_rows(triage)) == 4
    assert len(chat_records(triage, since=since)) == 1


def test_only_the_automations_own_labels_are_exported(triage, reviewer):
    other = make_automation("other", reviewer)
    decided(other, reviewer, action="approve")

    assert len(csv_rows(triage)) == 4
    assert len(csv_rows(other)) == 1


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        labels_export(automation=None, fmt="xml")


# The command.


def test_command_writes_jsonl_to_stdout(triage):
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "export_labels",
        "--automation",
        triage.slug,
        "--format",
        "openai-chat",
        stdout=out,
        stderr=err,
    )

    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert all(json.loads(line)["messages"][0]["role"] == "system" for line in lines)
    assert "exported 2 labels" in err.getvalue()


def test_command_says_how_far_a_long_export_got_on_stderr(triage, tmp_path, monkeypatch):
    monkeypatch.setattr("automations.management.commands.export_labels.PROGRESS_EVERY_SECONDS", 0)
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "export_labels", "--automation", triage.slug, "--format", "csv", stdout=out, stderr=err
    )

    progress = [line for line in err.getvalue().splitlines() if line.startswith("exporting:")]
    assert progress[-1] == "exporting: 5 lines written so far"  # the header and 4 labels
    assert "exporting" not in out.getvalue()


def test_command_writes_csv_to_a_file_with_since(triage, tmp_path):
    Label.objects.filter(outcome="accepted").update(created_at=timezone.now() - timedelta(days=30))
    target = tmp_path / "labels.csv"
    since = (timezone.localdate() - timedelta(days=1)).isoformat()

    call_command(
        "export_labels",
        "--automation",
        triage.slug,
        "--format",
        "csv",
        "--since",
        since,
        "--output",
        str(target),
        stderr=io.StringIO(),
    )

    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [row["outcome"] for row in rows] == ["edited", "rejected", "discarded"]


def test_command_rejects_an_unknown_automation(db):
    with pytest.raises(CommandError, match="unknown automation 'nope'"):
        call_command("export_labels", "--automation", "nope", "--format", "csv")


def test_command_rejects_a_bad_date(triage):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command(
            "export_labels", "--automation", triage.slug, "--format", "csv", "--since", "31/12/2024"
        )


def test_command_rejects_an_unknown_format(triage):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("export_labels", "--automation", triage.slug, "--format", "xml")
